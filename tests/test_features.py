import numpy as np
import pytest

from emotion.audio import SAMPLE_RATE
from emotion.features import FEATURE_NAMES, HOP_LENGTH, N_FEATURES, extract_features


def tone(frequency: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def column(name: str) -> int:
    return FEATURE_NAMES.index(name)


def test_shape_rate_and_type(english_speech):
    features = extract_features(english_speech)
    assert features.shape == (1 + english_speech.size // HOP_LENGTH, N_FEATURES)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    assert SAMPLE_RATE / HOP_LENGTH == 50  # Whisper's encoder rate


def test_chroma_finds_the_note():
    features = extract_features(tone(440.0))  # A4
    chroma = features[5:-5, column("chroma_0") : column("chroma_0") + 12].mean(axis=0)
    assert int(np.argmax(chroma)) == 9  # C, C#, D, D#, E, F, F#, G, G#, A


def test_noise_is_brighter_and_crosses_zero_more_than_a_low_tone():
    rng = np.random.default_rng(0)
    noise = extract_features((0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32))
    low = extract_features(tone(150.0))
    for name in ("centroid_khz", "zcr"):
        assert noise[:, column(name)].mean() > 5 * low[:, column(name)].mean()


def test_features_do_not_depend_on_recording_level(english_speech):
    loud, quiet = extract_features(english_speech), extract_features(english_speech * 0.05)
    assert np.abs(loud - quiet).max() == pytest.approx(0.0, abs=1e-2)


def test_silent_frames_stay_finite():
    padded = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), tone(300.0)])
    assert np.isfinite(extract_features(padded)).all()


def test_the_numpy_features_are_librosas(english_speech):
    import librosa

    from emotion.features import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE, normalize_level

    audio = normalize_level(english_speech).astype(np.float32)
    features = extract_features(english_speech)
    magnitude = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH))
    log_mel = features[:, column("mel_0") : column("mel_0") + 64].T
    reference = {
        "zcr": librosa.feature.zero_crossing_rate(audio, frame_length=N_FFT, hop_length=HOP_LENGTH)[0],
        "rms_db": 20 * np.log10(librosa.feature.rms(S=magnitude, frame_length=N_FFT)[0] + 1e-5),
        "centroid_khz": librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE)[0] / 1000,
        "mfcc_3": librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)[3],
    }
    for name, expected in reference.items():
        np.testing.assert_allclose(features[:, column(name)], expected, rtol=1e-4, atol=1e-4, err_msg=name)
