"""The web app: `python app.py` locally, and unchanged as a Gradio Space. Layout and wiring only; what each
button does is in emotion/interface.py, documented with the API in docs/app.md."""

from emotion import interface as ui
from emotion import settings

# Gradio comes through emotion.interface, which switches analytics and telemetry off before importing it.
gr = ui.gr
app = ui.EmotionApp.load()  # every model loads here, once

# Uploads and recordings are deleted from the server after an hour, so that a Space does not fill its disk.
with gr.Blocks(title=ui.TITLE, delete_cache=(3600, 3600)) as demo:
    gr.Markdown(f"# {ui.TITLE}\n{ui.INTRO}")
    with gr.Tab("Speech 语音"), gr.Row():
        with gr.Column(scale=2):
            audio = gr.Audio(
                sources=["microphone", "upload"], type="filepath", label="Speech 语音", elem_id="audio_in"
            )
            language = gr.Radio(ui.LANGUAGE_CHOICES, value="auto", label="Language 语言")
            text_weight = gr.Slider(
                0, 1, value=settings.TEXT_WEIGHT, step=0.05, label="Text weight 文本权重",
                info="The voice gets the rest. 其余权重归语音。",
            )  # fmt: skip
            analyze = gr.Button("Analyze 分析", variant="primary", elem_id="analyze_button")
            clips, names = ui.load_examples()
            if clips:
                gr.Examples(clips, [audio, language, text_weight], example_labels=names, cache_examples=False)
        with gr.Column(scale=3):
            fused = gr.Label(
                num_top_classes=ui.TOP_FUSED, label="Emotion 情绪 (fused)", elem_id="fused_label"
            )
            transcript = gr.Textbox(label="Transcript 转写", interactive=False, elem_id="transcript")
            with gr.Row():
                text_label = gr.Label(num_top_classes=ui.TOP_TEXT, label="Text 文本", elem_id="text_label")
                with gr.Column():
                    speech_label = gr.Label(
                        num_top_classes=ui.TOP_SPEECH, label="Voice 语音", elem_id="speech_label"
                    )
                    model_note = gr.Markdown(elem_id="speech_model")
            waveform = gr.Image(label="Waveform", format="png", interactive=False, elem_id="waveform_plot")
            mfcc = gr.Image(label="MFCC", format="png", interactive=False, elem_id="mfcc_plot")
            mel = gr.Image(label="Mel spectrogram", format="png", interactive=False, elem_id="mel_plot")
            with gr.Group(visible=False) as timeline_group:
                timeline = gr.Image(label="Timeline 时间线", format="png", interactive=False)
                segments = gr.Dataframe(headers=ui.SEGMENT_HEADERS, label="Segments 分段", wrap=True)
            with gr.Accordion("JSON (the /analyze API's answer)", open=False):
                result = gr.JSON(label="Analysis", elem_id="analysis_json")
    with gr.Tab("Text 文本"):
        text = gr.Textbox(label="Text 文本", lines=3, elem_id="text_in")
        text_language = gr.Radio(ui.LANGUAGE_CHOICES, value="auto", label="Language 语言")
        judge = gr.Button("Judge sentiment 判断情感", variant="primary", elem_id="judge_button")
        sentiment_label = gr.Label(label="Sentiment 情感", elem_id="sentiment_label")
        sentiment = gr.JSON(label="Sentiment (the /sentiment API's answer)")

    shown = [fused, transcript, text_label, speech_label, model_note, waveform, mfcc, mel]
    shown += [timeline_group, timeline, segments]
    # Clear, then /analyze (public: JSON only), then draw (private), so API clients never wait for plots.
    analyze.click(app.clear, None, shown, queue=False, api_visibility="private").then(
        app.analyze, [audio, language, text_weight], result, api_name="analyze", show_progress_on=fused
    ).success(app.show, [audio, result], shown, api_visibility="private")
    judged = gr.on(
        [judge.click, text.submit], app.sentiment, [text, text_language], sentiment, api_name="sentiment"
    )
    judged.success(app.show_sentiment, sentiment, sentiment_label, api_visibility="private")

demo.queue(**ui.queue_options())

if __name__ == "__main__":
    demo.launch(**ui.launch_options())
