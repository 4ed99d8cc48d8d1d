import numpy as np
import pytest
import soundfile

from emotion import Analyzer, EmotionError
from emotion.analysis import SEGMENT_SECONDS
from emotion.audio import SAMPLE_RATE, split_points
from emotion.labels import EMOTIONS
from emotion.synth import synthesize


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def test_split_points_cut_long_audio_in_pauses():
    rng = np.random.default_rng(0)
    # 8-s bursts of noise with 0.5-s pauses: every cut must land in a pause.
    burst, pause = 8 * SAMPLE_RATE, SAMPLE_RATE // 2
    pieces = [np.concatenate([0.3 * rng.standard_normal(burst), np.zeros(pause)]) for _ in range(9)]
    audio = np.concatenate(pieces).astype(np.float32)
    bounds = split_points(audio, SEGMENT_SECONDS)
    assert bounds[0][0] == 0 and bounds[-1][1] == audio.size
    assert all(end == next_start for (_, end), (next_start, _) in zip(bounds, bounds[1:], strict=False))
    assert all(end - start <= SEGMENT_SECONDS * SAMPLE_RATE for start, end in bounds)
    for _, end in bounds[:-1]:
        assert np.abs(audio[end - 100 : end + 100]).max() == 0.0


def test_short_audio_is_one_segment():
    audio = np.ones(SAMPLE_RATE * 29, dtype=np.float32)
    assert split_points(audio, SEGMENT_SECONDS) == [(0, SAMPLE_RATE * 29)]


def test_a_clip_from_one_call(analyzer, speech_wav):
    result = analyzer.analyze(speech_wav, language="auto", text_weight=0.3)
    record = result.to_json()
    assert "happy" in record["transcript"].lower()
    assert record["language"] == "en"
    assert record["text"]["label"] == "positive"
    for part in ("speech", "fused"):
        assert set(record[part]["scores"]) == set(EMOTIONS)
        assert sum(record[part]["scores"].values()) == pytest.approx(1.0)
    assert record["segments"] == []
    assert {"decode", "features", "speech_model", "transcription", "text", "fusion"} <= set(
        record["timings_ms"]
    )


def test_the_speech_model_listens_through_the_transcribers_encoder(analyzer, english_speech, monkeypatch):
    assert analyzer.speech_model.name == "whisper"
    assert analyzer.speech_model.encoder is analyzer.transcriber  # one Whisper in memory, for both jobs
    calls = []
    encode_window = analyzer.transcriber._encode_window
    monkeypatch.setattr(
        analyzer.transcriber, "_encode_window", lambda *args: calls.append(1) or encode_window(*args)
    )
    with_text = analyzer.analyze(english_speech)
    assert len(calls) == 1  # the transcription's window, read by the speech model too
    assert "encoder" not in with_text.timings_ms
    voice_only = Analyzer(transcribe=False).analyze(english_speech)
    assert len(calls) == 2 and voice_only.timings_ms["encoder"] > 0
    # The same frames either way, so the same answer with and without the transcript.
    assert voice_only.speech.scores == pytest.approx(with_text.speech.scores, abs=1e-4)
    assert with_text.to_json()["speech"]["model"] == "whisper"


def test_the_acoustic_model_needs_no_encoder(english_speech):
    analyzer = Analyzer(transcribe=False, speech_model="acoustic")
    result = analyzer.analyze(english_speech)
    assert analyzer.speech_model.encoder is None and "encoder" not in result.timings_ms
    assert result.to_json()["speech"]["model"] == "acoustic"


def test_the_text_weight_is_respected(analyzer, english_speech):
    voice_only = analyzer.analyze(english_speech, text_weight=0.0)
    assert voice_only.fused.scores == pytest.approx(voice_only.speech.scores)
    text_only = analyzer.analyze(english_speech, text_weight=1.0)
    positive = text_only.fused.scores["happy"] + text_only.fused.scores["surprised"]
    p, n = text_only.text.scores["positive"], text_only.text.scores["negative"]
    assert positive == pytest.approx(max(p - n, 0.0))


def test_long_clips_get_a_timeline(analyzer, tmp_path):
    sentence = synthesize("This is a calm sentence about the weather and the trains today.")
    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    audio = np.concatenate([np.concatenate([sentence, pause])] * 16)  # about 70 s
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    result = analyzer.analyze(path).to_json()
    segments = result["segments"]
    assert len(segments) >= 3
    assert segments[0]["start_s"] == 0.0
    assert segments[-1]["end_s"] == pytest.approx(result["duration_s"], abs=0.01)
    for segment in segments:
        assert segment["end_s"] - segment["start_s"] <= SEGMENT_SECONDS
        assert "weather" in segment["transcript"].lower()
        assert sum(segment["fused"]["scores"].values()) == pytest.approx(1.0)
    assert sum(result["fused"]["scores"].values()) == pytest.approx(1.0)


def test_bad_options_are_clear_errors(analyzer, speech_wav):
    with pytest.raises(EmotionError, match="language"):
        analyzer.analyze(speech_wav, language="fr")
    with pytest.raises(EmotionError, match="text weight"):
        analyzer.analyze(speech_wav, text_weight=1.5)
