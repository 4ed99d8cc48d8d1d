import numpy as np
import pytest
import soundfile

from emotion.audio import SAMPLE_RATE, load_audio
from emotion.errors import EmotionError
from tests.conftest import encode_with_ffmpeg

DURATION_S = 2.0


@pytest.fixture(scope="module")
def stereo_44k(tmp_path_factory):
    """A 2-s stereo chirp at 44.1 kHz: different in each channel, so a wrong downmix shows."""
    t = np.arange(int(DURATION_S * 44100)) / 44100
    left = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)
    right = 0.3 * np.sin(2 * np.pi * 330 * t)
    path = tmp_path_factory.mktemp("formats") / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 44100)
    return path


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        ("flac", []),
        ("mp3", ["-b:a", "64k"]),
        ("ogg", ["-c:a", "libopus"]),
        ("opus", []),
        ("webm", ["-c:a", "libopus"]),
        ("m4a", ["-c:a", "aac"]),
        ("wav", ["-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le"]),
    ],
)
def test_every_format_loads_as_16k_mono_float32(stereo_44k, tmp_path, suffix, options):
    path = encode_with_ffmpeg(stereo_44k, tmp_path / f"clip.{suffix}", *options)
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    # Lossy codecs pad a few ms at the edges; the length must still be the clip's.
    assert abs(audio.size / SAMPLE_RATE - DURATION_S) < 0.1
    assert 0.05 < np.abs(audio).max() <= 1.0


def test_stereo_is_averaged_to_mono(stereo_44k):
    original, rate = soundfile.read(stereo_44k)
    audio = load_audio(stereo_44k)
    expected_rms = np.sqrt(np.mean(original.mean(axis=1) ** 2))
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(expected_rms, rel=0.02)


def test_eight_channels_and_a_high_sample_rate(tmp_path):
    rate = 192000
    signal = 0.2 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    path = tmp_path / "eight.wav"
    soundfile.write(path, np.tile(signal[:, None], (1, 8)), rate)
    audio = load_audio(path)
    assert audio.size == SAMPLE_RATE
    assert np.abs(audio).max() == pytest.approx(0.2, rel=0.05)


def test_nan_and_inf_samples_become_zero(tmp_path):
    signal = 0.3 * np.sin(np.arange(SAMPLE_RATE) / 5.0).astype(np.float32)
    signal[100:200] = np.nan
    signal[300] = np.inf
    path = tmp_path / "nan.wav"
    soundfile.write(path, signal, SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(path)
    assert np.isfinite(audio).all()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", b"", "empty"),
        ("noise.wav", bytes(range(256)) * 40, "could not be read"),
        ("notes.mp3", b"this is a text file, not audio\n" * 20, "could not be read"),
    ],
)
def test_unusable_files_raise_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EmotionError, match=message):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(EmotionError, match="No audio file"):
        load_audio(tmp_path / "nowhere.wav")


def test_zero_length_wav(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(EmotionError, match="no audio samples"):
        load_audio(path)


def test_silence(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(EmotionError, match="silent"):
        load_audio(path)


def test_clip_over_the_limit(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, 0.1 * np.ones(SAMPLE_RATE * 5, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(EmotionError, match="longer than the 3-second limit"):
        load_audio(path, max_seconds=3)
    assert load_audio(path, max_seconds=10).size == 5 * SAMPLE_RATE


def test_a_signal_beyond_full_scale_is_brought_down_to_it(tmp_path):
    wave = np.sin(np.linspace(0, 200 * np.pi, SAMPLE_RATE)).astype(np.float32)
    path = tmp_path / "hot.wav"
    soundfile.write(path, 40.0 * wave, SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(path)
    assert np.max(np.abs(audio)) == pytest.approx(1.0)
    np.testing.assert_allclose(audio, wave / np.max(np.abs(wave)), atol=1e-5)
    quiet = 0.5 * wave
    soundfile.write(path, quiet, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), quiet)  # within full scale: untouched
