"""Frame-level acoustic features: zero-crossing rate, chroma, MFCC, RMS, log-mel and spectral centroid.

All six come from one STFT at 50 frames a second (20 ms hop), the frame rate of Whisper's encoder,
so that the two can be stacked frame by frame.
"""

from functools import cache

import librosa
import numpy as np
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


def n_frames(n_samples: int) -> int:
    return 1 + n_samples // HOP_LENGTH


def extract_features(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 -> (frames, N_FEATURES) float32, in the order of FEATURE_NAMES."""
    audio = normalize_level(audio).astype(np.float32)
    magnitude = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = magnitude**2
    mel_filter, chroma_filter = _filters()

    log_mel = 10.0 * np.log10(mel_filter @ power + DB_FLOOR)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    chroma = chroma_filter @ power
    chroma /= np.maximum(chroma.max(axis=0, keepdims=True), DB_FLOOR)
    rms = librosa.feature.rms(S=magnitude, frame_length=N_FFT)
    rms_db = 20.0 * np.log10(rms + 1e-5)
    zcr = librosa.feature.zero_crossing_rate(audio, frame_length=N_FFT, hop_length=HOP_LENGTH)
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE) / 1000.0

    features = np.concatenate([zcr, chroma, mfcc, rms_db, log_mel, centroid], axis=0)
    return np.ascontiguousarray(features.T, dtype=np.float32)
