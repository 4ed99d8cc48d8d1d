"""Frame-level acoustic features: zero-crossing rate, chroma, MFCC, RMS, log-mel and spectral centroid.

All six come from one STFT at 50 frames a second (20 ms hop), the frame rate of Whisper's encoder,
so that the two can be stacked frame by frame.
"""

from functools import cache

import librosa
import numpy as np
import scipy.fft
import scipy.signal
from threadpoolctl import threadpool_limits

from emotion.audio import SAMPLE_RATE

# The feature matrices are small: OpenBLAS threads cost more to wake than the product itself (45 ms
# instead of 0.3 ms per clip here) and fight torch and Whisper for the cores.
threadpool_limits(limits=1, user_api="blas")

N_FFT = 1024  # 64 ms: fine enough in frequency for the 12 chroma bins at 16 kHz
HOP_LENGTH = 320  # 20 ms, 50 frames a second
N_MELS = 64
N_MFCC = 20
N_CHROMA = 12
FEATURE_NAMES = (
    ["zcr"]
    + [f"chroma_{i}" for i in range(N_CHROMA)]
    + [f"mfcc_{i}" for i in range(N_MFCC)]
    + ["rms_db"]
    + [f"mel_{i}" for i in range(N_MELS)]
    + ["centroid_khz"]
)
N_FEATURES = len(FEATURE_NAMES)
# Speech is brought to this RMS level first, so that features describe the voice, not the microphone gain.
TARGET_RMS = 0.05
# What a cache of features is keyed on: a change to any of these makes the training scripts compute afresh.
CACHE_KEY = (N_FFT, HOP_LENGTH, N_MELS, N_MFCC, TARGET_RMS)
DB_FLOOR = 1e-10


@cache
def _filters() -> tuple[np.ndarray, np.ndarray]:
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    # tuning=0 skips librosa's per-clip tuning estimate, which costs more than all the other features.
    chroma = librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, n_chroma=N_CHROMA, tuning=0.0)
    return mel.astype(np.float32), chroma.astype(np.float32)


def normalize_level(audio: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return audio * (TARGET_RMS / max(rms, 1e-6))


def extract_features(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 -> (frames, N_FEATURES) float32, in the order of FEATURE_NAMES.

    The same numbers as librosa's stft, mfcc, rms, zero_crossing_rate and spectral_centroid (a test
    compares them), computed with numpy alone: librosa's first call compiles numba code and imports
    scipy.signal, which cost several seconds of every cold start.
    """
    audio = normalize_level(audio).astype(np.float32)
    magnitude = np.abs(_stft(audio))
    power = magnitude**2
    mel_filter, chroma_filter = _filters()

    log_mel = 10.0 * np.log10(mel_filter @ power + DB_FLOOR)
    mfcc = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=0)[:N_MFCC]
    chroma = chroma_filter @ power
    chroma /= np.maximum(chroma.max(axis=0, keepdims=True), DB_FLOOR)
    # Parseval over the one-sided spectrum: the DC and Nyquist bins count once, the others twice.
    edge_weights = np.ones((power.shape[0], 1), dtype=np.float32)
    edge_weights[[0, -1]] = 0.5
    rms = np.sqrt(2.0 * (power * edge_weights).sum(axis=0, keepdims=True)) / N_FFT
    rms_db = 20.0 * np.log10(rms + 1e-5)
    frequencies = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE).astype(np.float32)[:, None]
    total = magnitude.sum(axis=0, keepdims=True)
    centroid = (frequencies * magnitude).sum(axis=0, keepdims=True) / np.where(total > 0, total, 1.0) / 1000.0

    features = np.concatenate([_zero_crossing_rate(audio), chroma, mfcc, rms_db, log_mel, centroid], axis=0)
    return np.ascontiguousarray(features.T, dtype=np.float32)


def _frames(signal: np.ndarray) -> np.ndarray:
    """(frames, N_FFT) windows every HOP_LENGTH samples, centred: frame t covers sample t * HOP_LENGTH."""
    count = 1 + (signal.size - N_FFT) // HOP_LENGTH
    return np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP_LENGTH][:count]


def _stft(audio: np.ndarray) -> np.ndarray:
    padded = np.pad(audio, N_FFT // 2)
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True).astype(np.float32)
    return np.fft.rfft(_frames(padded) * window, axis=1).T.astype(np.complex64)


def _zero_crossing_rate(audio: np.ndarray) -> np.ndarray:
    # Samples within 1e-10 of zero count as positive zero, as in librosa.
    signs = np.signbit(np.where(np.abs(audio) <= 1e-10, 0.0, audio))
    framed = _frames(np.pad(signs, N_FFT // 2, mode="edge"))
    return (framed[:, 1:] != framed[:, :-1]).sum(axis=1, dtype=np.float32)[None, :] / N_FFT
