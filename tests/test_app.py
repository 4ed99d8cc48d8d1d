"""The web app: its logic without a browser, then /analyze and /sentiment through gradio_client against the
app launched by the tests (tests/app_server.py)."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from matplotlib import pyplot

from emotion import interface, plots, settings
from emotion.audio import SAMPLE_RATE
from emotion.errors import EmotionError
from emotion.fusion import text_valence
from emotion.labels import COLOURS, EMOTIONS, SENTIMENTS, VALENCE
from tests import app_server
from tests.conftest import encode_with_ffmpeg

ANALYSIS_KEYS = {"path", "duration_s", "speech", "transcript", "language", "text", "fused", "segments"}
ANALYSIS_KEYS |= {"timings_ms"}


def _scores(emotion: str, share: float = 0.65) -> dict[str, float]:
    rest = (1.0 - share) / (len(EMOTIONS) - 1)
    return {e: share if e == emotion else rest for e in EMOTIONS}


def _result(path: Path, segments: list[dict] | None = None) -> dict:
    return {
        "path": str(path),
        "duration_s": 3.0,
        "speech": {"model": "acoustic", "label": "happy", "scores": _scores("happy")},
        "transcript": "I am really happy today.",
        "language": "en",
        "text": {"label": "positive", "scores": {"positive": 0.9, "negative": 0.1}},
        "fused": {"label": "happy", "scores": _scores("happy", 0.7)},
        "segments": segments or [],
        "timings_ms": {},
    }


# --- The logic, without a server ------------------------------------------------------------------------


def test_labels_name_emotions_in_chinese_and_english():
    assert interface.scores_label({"angry": 0.7, "sad": 0.3}) == {"愤怒 angry": 0.7, "悲伤 sad": 0.3}


def test_no_audio_and_oversized_uploads_are_refused_with_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(interface.gr.Error, match="Record with the microphone or upload"):
        interface.check_upload(None)
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 3 * 2**20)
    monkeypatch.setattr(settings, "MAX_UPLOAD_MB", 2)
    with pytest.raises(interface.gr.Error, match="limit is 2 MB"):
        interface.check_upload(str(big))


def test_project_errors_become_gradio_errors_with_the_same_message():
    class Refusing:
        sentiment_model = None

        def analyze(self, *args, **kwargs):
            raise EmotionError("'x.wav' is silent. Check the microphone.")

    app = interface.EmotionApp(Refusing())
    with pytest.raises(interface.gr.Error, match="is silent. Check the microphone"):
        app.analyze("x.wav", "auto", 0.3, progress=lambda *args, **kwargs: None)
    with pytest.raises(interface.gr.Error, match="No text to judge"):
        app.sentiment("  ", "auto")


def test_display_draws_every_output_and_hides_the_timeline_for_a_short_clip(speech_wav):
    outputs = interface.display(str(speech_wav), _result(speech_wav))
    fused, transcript, text, speech, note, waveform, mfcc, mel, group, timeline, rows = outputs
    assert max(fused, key=fused.get) == "快乐 happy"
    assert transcript.value == "I am really happy today." and "English" in transcript.label
    assert set(text) == {"正面 positive", "负面 negative"}
    assert "acoustic" in note
    for image in (waveform, mfcc, mel):
        assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
    assert group.visible is False and timeline is None and rows is None
    assert pyplot.get_fignums() == []  # drawn without pyplot: nothing left open


def test_display_shows_the_timeline_and_segments_of_a_long_clip(speech_wav):
    segments = [
        {"start_s": 0.0, "end_s": 1.5, "transcript": "I am", "language": "en", "fused": {"label": "sad",
         "scores": _scores("sad")}},
        {"start_s": 1.5, "end_s": 3.0, "transcript": "happy", "language": "en", "fused": {"label": "happy",
         "scores": _scores("happy")}},
    ]  # fmt: skip
    *_, group, timeline, rows = interface.display(str(speech_wav), _result(speech_wav, segments))
    assert group.visible is True
    assert rows == [[0.0, 1.5, "悲伤 sad", "I am"], [1.5, 3.0, "快乐 happy", "happy"]]
    assert _has_colour(timeline, COLOURS["sad"]) and _has_colour(timeline, COLOURS["happy"])


def test_display_without_transcription_shows_the_voice_alone(speech_wav):
    result = {key: value for key, value in _result(speech_wav).items() if key in ("path", "speech")}
    result |= {"duration_s": 3.0, "timings_ms": {}}
    fused, transcript, text, *_ = interface.display(str(speech_wav), result)
    assert max(fused, key=fused.get) == "快乐 happy" and "off" in transcript.label and isinstance(text, str)


def _has_colour(image: np.ndarray, colour: str, tolerance: int = 6) -> bool:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(image.astype(int) - rgb).max(axis=-1) <= tolerance).any())


def test_waveform_is_shaded_in_the_emotion_colour(english_speech):
    image = plots.waveform_image(english_speech, [(0.0, 1.0, "angry")])
    assert image.shape[:2] == (260, 800)
    # shading is a quarter-opaque fill over white: the colour mixed 1:3 with white
    mixed = "#" + "".join(
        f"{round(0.25 * int(COLOURS['angry'][i : i + 2], 16) + 0.75 * 255):02x}" for i in (1, 3, 5)
    )
    assert _has_colour(image, mixed)


def test_examples_come_from_the_list_with_bilingual_names(tmp_path):
    (tmp_path / "a.ogg").write_bytes(b"x")
    listing = [
        {"file": "a.ogg", "language": "zh", "mood": "sad", "language_choice": "auto", "text_weight": 0.3},
        {"file": "missing.ogg", "language": "en", "mood": "happy"},
    ]
    (tmp_path / "examples.json").write_text(json.dumps(listing))
    rows, names = interface.load_examples(tmp_path / "examples.json")
    assert rows == [[str(tmp_path / "a.ogg"), "auto", 0.3]] and names == ["悲伤 sad · 中文 Chinese"]
    assert interface.load_examples(tmp_path / "nothing.json") == ([], [])


def test_project_examples_list_names_existing_clips():
    rows, names = interface.load_examples()
    assert len(rows) == len(names)
    assert all(Path(row[0]).is_file() and row[1] in ("auto", "zh", "en") for row in rows)


# --- Through gradio_client, against the running app --------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Client:
    # download_files=False: gradio_client 2.7 takes any answer with a "path" string for a file to download,
    # and /analyze's JSON has one (the clip's path), so it would hand back a file path instead of the JSON.
    return Client(app_server.url(), verbose=False, download_files=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, speech_wav) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api-clips")
    noise = np.random.default_rng(0).normal(0, 0.1, int(SAMPLE_RATE * (app_server.MAX_CLIP_SECONDS + 5)))
    paths = {
        "empty": folder / "empty.wav",
        "corrupt": folder / "corrupt.wav",
        "text": folder / "notes.txt",
        "silence": folder / "silence.wav",
        "long": folder / "long.flac",
        "big": folder / "big.wav",
        "broken_webm": folder / "broken.webm",
    }
    paths["empty"].write_bytes(b"")
    paths["corrupt"].write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(1).bytes(4000))
    paths["text"].write_text("This is not audio.\n" * 50)
    soundfile.write(paths["silence"], np.zeros(SAMPLE_RATE * 2), SAMPLE_RATE)
    soundfile.write(paths["long"], noise, SAMPLE_RATE)
    soundfile.write(paths["big"], np.zeros(int(app_server.MAX_UPLOAD_MB * 2**20)), SAMPLE_RATE)  # 2x size
    paths["webm"] = encode_with_ffmpeg(speech_wav, folder / "speech.webm", "-c:a", "libopus")
    paths["broken_webm"].write_bytes(paths["webm"].read_bytes()[:200])
    return paths


def _check_analysis(result: dict) -> None:
    assert set(result) >= ANALYSIS_KEYS
    for judgement in (result["speech"], result["fused"]):
        assert set(judgement["scores"]) == set(EMOTIONS)
        assert math.isclose(sum(judgement["scores"].values()), 1.0, abs_tol=1e-4)
        assert judgement["label"] == max(judgement["scores"], key=judgement["scores"].get)
    assert result["text"] is not None and set(result["text"]["scores"]) == set(SENTIMENTS)
    assert math.isclose(sum(result["text"]["scores"].values()), 1.0, abs_tol=1e-4)


def test_only_analyze_and_sentiment_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/analyze", "/sentiment"} and not api["unnamed_endpoints"]


def test_analyze_returns_the_cli_json(client, speech_wav):
    started = time.perf_counter()
    result = client.predict(handle_file(str(speech_wav)), "auto", 0.3, api_name="/analyze")
    print(f"/analyze of a {result['duration_s']:.1f}-s clip: {time.perf_counter() - started:.2f} s")
    _check_analysis(result)
    assert result["language"] == "en" and "happy" in result["transcript"].lower()


def test_analyze_reads_a_webm_recording_with_chosen_language_and_weight(client, clips):
    result = client.predict(handle_file(str(clips["webm"])), "en", 1.0, api_name="/analyze")
    _check_analysis(result)
    assert result["language"] == "en" and result["transcript"]
    # with the text alone weighing in, each valence group of the fused answer holds the text's valence
    valence = text_valence(result["text"]["scores"])
    for group, share in valence.items():
        fused = sum(p for e, p in result["fused"]["scores"].items() if VALENCE[e] == group)
        assert math.isclose(fused, share, abs_tol=1e-4)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "Record with the microphone or upload a clip"),
        ("empty", "empty file"),
        ("corrupt", "could not be read as audio"),
        ("text", "could not be read as audio"),
        ("silence", "is silent"),
        ("long", f"longer than the {app_server.MAX_CLIP_SECONDS}-second limit"),
        ("broken_webm", "could not be read as audio"),
    ],
)
def test_bad_audio_gets_a_clear_error_and_the_server_keeps_serving(client, clips, name, message):
    audio = handle_file(str(clips[name])) if name else None
    with pytest.raises(AppError, match=message):
        client.predict(audio, "auto", 0.3, api_name="/analyze")
    assert client.predict("I love this", "en", api_name="/sentiment")["label"] in SENTIMENTS


def test_upload_over_the_size_limit_is_refused(client, clips, speech_wav):
    with pytest.raises(Exception, match="(?i)maximum (allowed |file )?size"):
        client.predict(handle_file(str(clips["big"])), "auto", 0.3, api_name="/analyze")
    _check_analysis(client.predict(handle_file(str(speech_wav)), "auto", 0.3, api_name="/analyze"))


@pytest.mark.parametrize(
    ("text", "language"), [("今天真是太开心了，一切都很顺利。", "zh"), ("What a wonderful, happy day.", "en")]
)
def test_sentiment_of_chinese_and_english(client, text, language):
    result = client.predict(text, "auto", api_name="/sentiment")
    assert result["text"] == text and result["language"] == language and result["label"] in SENTIMENTS
    assert math.isclose(sum(result["scores"].values()), 1.0, abs_tol=1e-4)


def test_sentiment_of_no_text_says_so(client):
    with pytest.raises(AppError, match="No text to judge"):
        client.predict("", "auto", api_name="/sentiment")


@pytest.mark.filterwarnings("ignore:Glyph")  # the stand-in font has no Chinese: only the code path is tested
def test_plots_name_emotions_in_both_languages_where_a_chinese_font_exists(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")  # stands in for an installed CJK font
    assert plots.emotion_name("angry") == "愤怒 angry"
    segments = [{"start_s": 0.0, "end_s": 30.0, "fused": {"label": "angry", "scores": _scores("angry")}}]
    assert plots.timeline_image(segments).shape == (300, 800, 3)
