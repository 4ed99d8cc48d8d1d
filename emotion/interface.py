"""Everything the web app does, apart from its layout: app.py lays the page out and wires it to these.

Two public endpoints and the display of their answers:

    /analyze    audio file, language, text weight -> Analysis.to_json(), the CLI's JSON
    /sentiment  text, language                   -> the text model's Sentiment.to_json()

The page runs /analyze, then draws its answer (labels, plots, timeline) in a second, private step, so that
an API client gets the JSON alone and never waits for a plot. Every function here runs without a browser.
"""

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

# Gradio and huggingface_hub read these when they are imported, so they are set before the import below.
# A user who wants analytics sets them; setdefault leaves their choice alone.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from emotion import settings  # noqa: E402
from emotion.analysis import LANGUAGE_OPTIONS, Analyzer  # noqa: E402
from emotion.audio import SAMPLE_RATE, load_audio  # noqa: E402
from emotion.errors import EmotionError  # noqa: E402
from emotion.labels import CHINESE_NAMES, COLOURS, bilingual  # noqa: E402
from emotion.plots import feature_images, timeline_image, waveform_image  # noqa: E402
from emotion.speech import DESCRIPTIONS  # noqa: E402

log = logging.getLogger(__name__)

TITLE = "Emotion analyser · 情绪分析"
INTRO = (
    "Speak into the microphone or drop in a clip. Whisper writes down the words, a text model judges their "
    "sentiment and a voice model the emotion in the voice; the two are fused into one answer.\n\n"
    "对着麦克风说话或上传音频：Whisper 转写文字，文本模型判断情感，"
    "语音模型判断声音中的情绪，两者融合为一个结果。"
)
# (shown, value): the API takes the value.
LANGUAGE_CHOICES = [("auto", "auto"), ("中文", "zh"), ("English", "en")]
LANGUAGE_NAMES = {"zh": "中文 Chinese", "en": "English"}
TOP_FUSED, TOP_TEXT, TOP_SPEECH = 4, 2, 3
EXAMPLES_LIST = settings.PROJECT_ROOT / "examples" / "examples.json"
SEGMENT_HEADERS = ["start (s)", "end (s)", "情绪 emotion", "transcript 转写"]

NO_AUDIO = "No audio yet. Record with the microphone or upload a clip, then press Analyze."
NO_TEXT = "No text to judge. Type a sentence in Chinese or English."
# Gradio hands a fresh tracker to each call of a function whose parameter defaults to a Progress instance.
PROGRESS = gr.Progress()
UNEXPECTED = "The analysis failed unexpectedly. Try another clip; the server log has the details."


class EmotionApp:
    """The models, loaded once, and the handlers that the page and the API call."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer

    @classmethod
    def load(cls, transcribe: bool = True) -> "EmotionApp":
        app = cls(Analyzer(transcribe=transcribe))
        app.warm_up()
        return app

    def warm_up(self) -> None:
        """One analysis and one drawing of a second of noise, so that the first clip's one-time costs (the
        feature filter banks, CTranslate2's first pass, matplotlib's font cache) are paid at start, not by
        the first visitor."""
        noise = np.random.default_rng(0).normal(0.0, 0.05, SAMPLE_RATE).astype(np.float32)
        with suppress(EmotionError):  # the answer is not needed, only the compiled code
            self.analyzer.analyze(noise)
        feature_images(noise)
        waveform_image(noise)

    def analyze(self, audio: str | None, language: str, text_weight: float, progress: Any = PROGRESS) -> dict:
        """Analyse a speech clip: transcript, text sentiment, voice and fused emotion (the CLI's JSON)."""
        path = check_upload(audio)
        weight = settings.TEXT_WEIGHT if text_weight is None else float(text_weight)
        progress(0.0, desc="Listening…")
        with _person_errors():
            result = self.analyzer.analyze(
                path, language=language or "auto", text_weight=weight, progress=_reporter(progress)
            )
        return result.to_json()

    def sentiment(self, text: str | None, language: str) -> dict:
        """The sentiment (positive/negative) of a text, with its scores."""
        if not text or not text.strip():
            raise gr.Error(NO_TEXT, title="No text")
        if self.analyzer.sentiment_model is None:
            raise gr.Error("This server runs without the text model.", title="No text model")
        if language not in LANGUAGE_OPTIONS:
            raise gr.Error(f"Unknown language {language!r}; choose one of {', '.join(LANGUAGE_OPTIONS)}.")
        with _person_errors():
            result = self.analyzer.sentiment_model.predict([text], language=language)[0]
        if result is None:
            raise gr.Error(NO_TEXT, title="No text")
        return result.to_json()

    @staticmethod
    def clear() -> tuple:
        """Empty outputs while a new clip is analysed, so an old answer is never read as the new one."""
        return display(None, None)

    @staticmethod
    def show(audio: str | None, result: dict | None) -> tuple:
        return display(audio, result)

    @staticmethod
    def show_sentiment(result: dict | None) -> dict | None:
        return scores_label(result["scores"]) if result else None


def check_upload(audio: str | None) -> str:
    """The clip's path, or a gr.Error saying what to do instead. Decoding problems are load_audio's."""
    if not audio:
        raise gr.Error(NO_AUDIO, title="No audio")
    path = Path(audio)
    if path.is_file() and path.stat().st_size > settings.MAX_UPLOAD_MB * 2**20:
        size = path.stat().st_size / 2**20
        raise gr.Error(
            f"The file is {size:.0f} MB; the limit is {settings.MAX_UPLOAD_MB:g} MB. "
            "Trim the clip or save it in a compressed format (MP3, OGG, M4A).",
            title="File too large",
        )
    return str(path)


@contextmanager
def _person_errors() -> Iterator[None]:
    """EmotionError's message is written for a person: show it. Anything else is a bug: log it, say so."""
    try:
        yield
    except EmotionError as error:
        raise gr.Error(str(error), title="Cannot analyse this input") from error
    except gr.Error:
        raise
    except Exception as error:
        log.exception("analysis failed")
        raise gr.Error(UNEXPECTED, title="Analysis failed") from error


def _reporter(progress: Any) -> Callable[[float, str], None]:
    return lambda fraction, message: progress(fraction, desc=message)


def scores_label(scores: dict[str, float]) -> dict[str, float]:
    """{'angry': 0.7} -> {'愤怒 angry': 0.7}: gr.Label's value, named in both languages."""
    return {bilingual(label) if label in CHINESE_NAMES else label: score for label, score in scores.items()}


def transcript_box(result: dict) -> gr.Textbox:
    if "transcript" not in result:
        return gr.Textbox(value="", label="Transcript 转写 (transcription is off on this server)")
    language = LANGUAGE_NAMES.get(result.get("language"), result.get("language") or "no speech heard")
    return gr.Textbox(value=result["transcript"], label=f"Transcript 转写 · {language}")


def model_note(result: dict) -> str:
    name = result["speech"]["model"]
    about = f" ({DESCRIPTIONS[name]})" if name in DESCRIPTIONS else ""
    return f"<small>Voice model 语音模型: `{name}`{about}</small>"


def display(audio: str | None, result: dict | None) -> tuple:
    """Every displayed output of the analysis page, in app.py's order of `display` components."""
    if result is None:
        empty_transcript = gr.Textbox(value="", label="Transcript 转写")
        return (None, empty_transcript, None, None, "", None, None, None, gr.Group(visible=False), None, None)
    speech = result["speech"]
    fused = result.get("fused") or speech  # without transcription the voice alone is the answer
    text = result.get("text")
    segments = result.get("segments") or []
    clip = load_audio(audio, max_seconds=settings.MAX_CLIP_SECONDS)
    spans = [(s["start_s"], s["end_s"], s["fused"]["label"]) for s in segments]
    mfcc, mel = feature_images(clip)
    timeline = len(segments) > 1
    return (
        scores_label(fused["scores"]),
        transcript_box(result),
        scores_label(text["scores"]) if text else "无文字 no words",
        scores_label(speech["scores"]),
        model_note(result),
        waveform_image(clip, spans or [(0.0, result["duration_s"], fused["label"])]),
        mfcc,
        mel,
        gr.Group(visible=timeline),
        timeline_image(segments) if timeline else None,
        segment_rows(segments) if timeline else None,
    )


def segment_rows(segments: list[dict]) -> list[list]:
    return [[s["start_s"], s["end_s"], bilingual(s["fused"]["label"]), s["transcript"]] for s in segments]


def load_examples(path: Path = EXAMPLES_LIST) -> tuple[list[list], list[str]]:
    """The example clips listed in examples.json as gr.Examples rows (audio, language, weight) and labels."""
    if not path.is_file():
        return [], []
    rows, labels = [], []
    for item in json.loads(path.read_text(encoding="utf-8")):
        clip = path.parent / item["file"]
        if not clip.is_file():
            continue
        rows.append(
            [str(clip), item.get("language_choice", "auto"), item.get("text_weight", settings.TEXT_WEIGHT)]
        )
        mood = item.get("mood", "")
        name = bilingual(mood) if mood in CHINESE_NAMES else mood
        labels.append(f"{name} · {LANGUAGE_NAMES.get(item.get('language'), item.get('language', ''))}")
    return rows, labels


def queue_options() -> dict:
    return {"default_concurrency_limit": settings.APP_CONCURRENCY, "max_size": settings.APP_QUEUE_SIZE}


def label_css() -> str:
    """gr.Label draws every bar in one theme colour; this gives each emotion and sentiment its own, as in the
    plots. Each bar's row carries its label in data-testid, and the bar's fill reads this CSS variable."""
    return "\n".join(
        f'[data-testid="{bilingual(label)}-confidence-set"] {{ --stat-background-fill: {colour}; }}'
        for label, colour in COLOURS.items()
    )


def launch_options() -> dict:
    """Gradio refuses larger uploads itself, before they reach a handler or the disk in full."""
    return {"max_file_size": int(settings.MAX_UPLOAD_MB * 2**20), "css": label_css()}
