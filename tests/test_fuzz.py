"""Bad input, tried for real: every case must end in a result or an EmotionError, within a time limit, and
leave no temporary file behind.

The audio loader gets random bytes, truncated and corrupted files of every format, files under the wrong
extension and WAV headers that lie (huge or zero sample rates, 8 or 65535 channels, hours of data that
are not there); the analysis gets short, silent, NaN/inf-laced and extreme signals; the text branch gets
empty strings, emoji, mixed scripts, control characters and 100k characters. Bounded example counts keep
the file under a minute. `pytest -s tests/test_fuzz.py` prints how many cases of each kind were tried.
"""

import os
import shutil
import signal
import struct
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion import settings as project_settings
from emotion.analysis import Analysis, Analyzer
from emotion.audio import SAMPLE_RATE, load_audio
from emotion.bench import build_analyzer, timing_weights
from emotion.errors import EmotionError

# A case that takes longer than this has hung: the loader's own ffmpeg limit is 120 s, the cases take < 2 s.
CASE_SECONDS = 60
FORMATS = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": [],
    "mp3": ["-b:a", "64k"],
    "ogg": ["-c:a", "libvorbis"],
    "webm": ["-c:a", "libopus"],
    "m4a": ["-c:a", "aac"],
}
EXTENSIONS = [*FORMATS, "opus", "txt", "", "WAV", "mp4"]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is one anyone can reproduce
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TRIED: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    print(f"\nfuzz cases tried: {dict(TRIED)}, {sum(TRIED.values())} in all")


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """TimeoutError in this (the main) thread after `seconds`: a hang fails the test instead of the suite."""

    def expire(signum, frame):
        raise TimeoutError(f"a case ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _no_leaks(kind: str) -> Iterator[None]:
    """Run a case with a fresh, private temporary folder, which must be empty again when the case ends."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    saved, saved_environment = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    try:
        with _deadline(CASE_SECONDS):
            yield
    finally:
        tempfile.tempdir = saved
        if saved_environment is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_environment
        leaked = sorted(path.name for path in folder.iterdir())
        shutil.rmtree(folder, ignore_errors=True)
        TRIED[kind] += 1
    assert not leaked, f"temporary files left behind: {leaked}"


def _loads_or_refuses(path: Path) -> np.ndarray | None:
    """load_audio as the analyser calls it: a usable signal, or None for a clear EmotionError."""
    try:
        audio = load_audio(path, max_seconds=project_settings.MAX_CLIP_SECONDS)
    except EmotionError as error:
        assert str(error) and "Traceback" not in str(error)
        return None
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert np.isfinite(audio).all()
    assert audio.size <= (project_settings.MAX_CLIP_SECONDS + 1) * SAMPLE_RATE
    return audio


def wav_bytes(
    payload: bytes, rate: int = SAMPLE_RATE, channels: int = 1, bits: int = 16, code: int = 1, data_size=None
) -> bytes:
    """A WAV file whose header says whatever it is told, true or not."""
    data_size = len(payload) if data_size is None else data_size
    block = channels * bits // 8 & 0xFFFF
    header = b"RIFF" + struct.pack("<I", (36 + data_size) & 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, code, channels & 0xFFFF, rate & 0xFFFFFFFF, rate * block & 0xFFFFFFFF, block, bits
    )
    return header + b"data" + struct.pack("<I", data_size & 0xFFFFFFFF) + payload


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-inputs")


@pytest.fixture(scope="module")
def encoded(folder: Path) -> dict[str, bytes]:
    """Two seconds of a voiced sound (a buzz with vowel-like formants), in every format the loader takes."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    signal_ = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / SAMPLE_RATE) / k for k in range(1, 20))
    source = folder / "source.wav"
    soundfile.write(source, (0.2 * signal_ / np.abs(signal_).max()).astype(np.float32), SAMPLE_RATE)
    files = {}
    for suffix, options in FORMATS.items():
        target = folder / f"clip.{suffix}"
        command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *options, str(target)]
        subprocess.run(command, check=True, timeout=60)
        files[suffix] = target.read_bytes()
    return files


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The project's models, untrained stand-ins for any not trained yet: these tests check robustness."""
    return timing_weights(tmp_path_factory.mktemp("weights"))[0]


@pytest.fixture(scope="module")
def speech_only(weights) -> Analyzer:
    return build_analyzer(weights, transcribe=False)


@pytest.fixture(scope="module")
def full(weights) -> Analyzer:
    return build_analyzer(weights, transcribe=True)


# ---- the audio loader ------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096), extension=st.sampled_from(EXTENSIONS))
def test_random_bytes_are_refused_clearly(folder, data, extension):
    path = folder / f"random.{extension}" if extension else folder / "random"
    path.write_bytes(data)
    with _no_leaks("random bytes"):
        _loads_or_refuses(path)


@FUZZ
@given(suffix=st.sampled_from(list(FORMATS)), keep=st.floats(0.0, 0.99))
def test_truncated_files_of_every_format(folder, encoded, suffix, keep):
    data = encoded[suffix]
    path = folder / f"truncated.{suffix}"
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    with _no_leaks("truncated file"):
        _loads_or_refuses(path)


@FUZZ
@given(
    suffix=st.sampled_from(list(FORMATS)),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_bytes_in_every_format(folder, encoded, suffix, flips):
    data = bytearray(encoded[suffix])
    for where, value in flips:
        data[int(where * len(data))] = value
    path = folder / f"corrupted.{suffix}"
    path.write_bytes(bytes(data))
    with _no_leaks("corrupted file"):
        _loads_or_refuses(path)


@pytest.mark.parametrize("content", list(FORMATS))
@pytest.mark.parametrize("named", ["wav", "mp3", "flac", "txt"])
def test_wrong_extensions_still_decode(folder, encoded, content, named):
    path = folder / f"{content}-named.{named}"
    path.write_bytes(encoded[content])
    with _no_leaks("wrong extension"):
        audio = _loads_or_refuses(path)
    assert audio is not None and abs(audio.size / SAMPLE_RATE - 2.0) < 0.1


@settings(FUZZ, max_examples=24)
@given(
    rate=st.one_of(
        st.sampled_from([0, 1, 7999, 44100, 384000, 2**31 - 1, 2**32 - 1]), st.integers(0, 2**32 - 1)
    ),
    channels=st.sampled_from([0, 1, 2, 8, 255, 65535]),
    bits=st.sampled_from([0, 8, 16, 24, 32, 64, 7]),
    code=st.sampled_from([1, 3, 0, 0xFFFE, 85]),
    claimed=st.sampled_from([None, 0, 1, 0xFFFFFFFF, 0xFFFFFFF0, 3600 * 16000 * 2]),
)
def test_lying_wav_headers(folder, rate, channels, bits, code, claimed):
    payload = (0.3 * np.sin(np.arange(16000) / 5) * 32767).astype("<i2").tobytes()
    path = folder / "header.wav"
    path.write_bytes(wav_bytes(payload, rate, channels, bits, code, claimed))
    with _no_leaks("lying WAV header"):
        _loads_or_refuses(path)


def test_a_header_claiming_hours_reads_only_what_is_there(folder):
    path = folder / "hours.wav"
    samples = (0.3 * np.sin(np.arange(SAMPLE_RATE) / 5) * 32767).astype("<i2")
    path.write_bytes(wav_bytes(samples.tobytes(), data_size=10 * 3600 * SAMPLE_RATE * 2))
    with _no_leaks("lying WAV header"):
        audio = _loads_or_refuses(path)
    assert audio is not None and audio.size == SAMPLE_RATE


def test_a_clip_past_the_length_limit_is_refused_not_read_whole(folder, monkeypatch):
    monkeypatch.setattr(project_settings, "MAX_CLIP_SECONDS", 5.0)
    path = folder / "long.wav"
    soundfile.write(path, 0.3 * np.sin(np.arange(20 * SAMPLE_RATE) / 5), SAMPLE_RATE)
    with _no_leaks("too long"), pytest.raises(EmotionError, match="limit"):
        load_audio(path, max_seconds=5.0)


@pytest.mark.parametrize(
    ("name", "values", "rate"),
    [
        ("one sample", [0.5], SAMPLE_RATE),
        ("one sample at 44.1 kHz", [0.5], 44100),
        ("all NaN", [np.nan] * 16000, SAMPLE_RATE),
        ("all +inf", [np.inf] * 16000, SAMPLE_RATE),
        ("NaN and inf among speech", "laced", SAMPLE_RATE),
        ("near float32 max", [3e38, -3e38] * 8000, SAMPLE_RATE),
    ],
)
def test_float_wavs_with_nan_inf_and_single_samples(folder, name, values, rate):
    if isinstance(values, str):
        values = np.sin(np.arange(16000) / 5)
        values[::7], values[3::11] = np.nan, -np.inf
    path = folder / "float.wav"
    path.write_bytes(wav_bytes(np.asarray(values, "<f4").tobytes(), rate, bits=32, code=3))
    with _no_leaks("NaN/inf/1-sample file"):
        _loads_or_refuses(path)


def test_a_few_nan_samples_do_not_silence_a_resampled_clip(folder):
    values = 0.3 * np.sin(np.arange(44100) / 5)
    values[::1000] = np.nan
    path = folder / "nan44k.wav"
    path.write_bytes(wav_bytes(values.astype("<f4").tobytes(), 44100, bits=32, code=3))
    audio = load_audio(path, max_seconds=project_settings.MAX_CLIP_SECONDS)
    assert np.abs(audio).max() > 0.2


@pytest.mark.parametrize("channels", [2, 8])
def test_many_channels(folder, channels):
    signal_ = 0.2 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    path = folder / f"channels{channels}.wav"
    soundfile.write(path, np.tile(signal_[:, None], (1, channels)), SAMPLE_RATE)
    with _no_leaks("many channels"):
        audio = _loads_or_refuses(path)
    assert audio is not None and audio.size == SAMPLE_RATE


# ---- the analysis ----------------------------------------------------------------------------------------

_SPECIAL = st.sampled_from([0.0, 1.0, -1.0, 1e-9, 3e38, np.nan, np.inf, -np.inf])
_SIGNALS = st.one_of(
    st.lists(st.one_of(st.floats(-1, 1), _SPECIAL), min_size=0, max_size=64).map(lambda v: np.array(v)),
    st.tuples(st.integers(1, 2 * SAMPLE_RATE), st.integers(0, 2**32 - 1), st.floats(1e-6, 10.0)).map(
        lambda spec: np.random.default_rng(spec[1]).normal(0, spec[2], spec[0])
    ),
    st.tuples(st.integers(1, 2 * SAMPLE_RATE), _SPECIAL).map(lambda spec: np.full(spec[0], spec[1])),
)


def _analyses_or_refuses(analyzer: Analyzer, source, **options) -> Analysis | None:
    try:
        result = analyzer.analyze(source, **options)
    except EmotionError as error:
        assert str(error)
        return None
    scores = result.speech.scores
    assert all(np.isfinite(list(scores.values()))) and abs(sum(scores.values()) - 1) < 1e-3
    if result.fused is not None:
        assert abs(sum(result.fused.scores.values()) - 1) < 1e-3
    assert result.to_json()["duration_s"] >= 0
    return result


@settings(FUZZ, max_examples=40)
@given(audio=_SIGNALS, laced=st.booleans())
def test_speech_analysis_of_any_signal(speech_only, audio, laced):
    audio = audio.astype(np.float32)
    if laced and audio.size > 3:
        audio[:: max(1, audio.size // 3)] = np.nan
    with _no_leaks("speech analysis of an array"):
        _analyses_or_refuses(speech_only, audio)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("one sample", lambda: np.array([0.5])),
        ("a tenth of a second of noise", lambda: np.random.default_rng(1).normal(0, 0.1, 1600)),
        (
            "NaN-laced tone",
            lambda: np.where(np.arange(32000) % 5 == 0, np.nan, 0.3 * np.sin(np.arange(32000) / 5)),
        ),
        ("clipped square wave at full scale", lambda: np.sign(np.sin(np.arange(32000) / 20))),
        ("loud white noise", lambda: np.random.default_rng(2).uniform(-1, 1, 3 * SAMPLE_RATE)),
    ],
)
def test_full_analysis_of_strange_signals(full, name, make):
    with _no_leaks("full analysis of a signal"):
        _analyses_or_refuses(full, make().astype(np.float32), language="auto")


@pytest.mark.parametrize(
    "shape", [(SAMPLE_RATE, 2), (2, SAMPLE_RATE), ()], ids=["samples x channels", "channels x samples", "0-d"]
)
def test_arrays_that_are_not_one_channel_are_refused_clearly(speech_only, shape):
    audio = np.asarray(0.3 * np.sign(np.cos(np.arange(np.prod(shape, dtype=int)) / 5)), np.float32).reshape(
        shape
    )
    with _no_leaks("array of the wrong shape"):
        _analyses_or_refuses(speech_only, audio)


@pytest.mark.parametrize(("language", "weight"), [("fr", 0.3), ("auto", 1.5), ("auto", float("nan"))])
def test_bad_options_are_refused_clearly(speech_only, language, weight):
    with _no_leaks("bad option"), pytest.raises(EmotionError):
        speech_only.analyze(np.ones(1600, np.float32) * 0.1, language=language, text_weight=weight)


# ---- the text branch -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentiment_model(weights):
    # jieba writes its dictionary cache (jieba.cache, one file reused by every later process) to the temporary
    # folder on first use: a cache, not a leak, so it is made before the cases watch that folder.
    import jieba

    from emotion.text import load_sentiment_model

    jieba.setLogLevel(60)
    jieba.initialize()
    return load_sentiment_model(weights)


_TEXTS = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet="好不开心难过😀🎉👍🏽\u200d\u200b\ufeffabc ABC！？。\n\t", max_size=200),
    st.sampled_from(["", " ", "\n\t ", "\x00", "😀" * 50, "\u200b", "\ud800", "ب" * 40, "👨‍👩‍👧‍👦"]),
)


@settings(FUZZ, max_examples=150)
@given(text=_TEXTS, language=st.sampled_from(["auto", "zh", "en"]))
def test_sentiment_of_any_text(sentiment_model, text, language):
    with _no_leaks("text"):
        [result] = sentiment_model.predict([text], language=language)
    if not text.strip():
        assert result is None
    else:
        assert result is not None and abs(sum(result.scores.values()) - 1) < 1e-4


@pytest.mark.parametrize(
    "text",
    [
        "我今天很开心 but the weather is terrible 😀 очень хорошо مرحبا",
        "x" * 100_000,
        "好" * 100_000,
        ("happy 开心 😀 " * 12_500)[:100_000],
        "\U0001f600" * 100_000,
        "\x00\x01\x7f" * 1000,
        "a broken paste \ud800 good",  # not valid UTF-8: the English sentence encoder's tokenizer refused it
    ],
    ids=[
        "mixed scripts",
        "100k latin",
        "100k han",
        "100k mixed",
        "100k emoji",
        "control characters",
        "surrogate",
    ],
)
@pytest.mark.parametrize("language", ["auto", "zh", "en"])
def test_sentiment_of_long_and_mixed_texts(sentiment_model, text, language):
    with _no_leaks("long or mixed text"):
        [result] = sentiment_model.predict([text], language=language)
    assert result is not None and result.label in result.scores


def test_an_unknown_text_language_is_refused_clearly(sentiment_model):
    with pytest.raises(EmotionError):
        sentiment_model.predict(["hello"], language="fr")
