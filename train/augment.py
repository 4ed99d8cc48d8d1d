"""Waveform augmentation for training speakers: noise, pitch, speed, gain and shift.

Each augmented copy draws its own random mix, so the network never sees the same copy twice across copies.
"""

import librosa
import numpy as np
import soxr

from emotion.audio import SAMPLE_RATE

SNR_DB = (10.0, 35.0)
PITCH_SEMITONES = 2.0
SPEED = (0.9, 1.1)
GAIN_DB = 6.0
SHIFT_S = 0.25
# What a cache of augmented copies is keyed on, beside the seed and the features' own key.
CACHE_KEY = (SNR_DB, PITCH_SEMITONES, SPEED, GAIN_DB, SHIFT_S)


def add_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    snr_db = rng.uniform(*SNR_DB)
    noise = rng.standard_normal(audio.size).astype(np.float32)
    signal_power = np.mean(audio**2) + 1e-10
    return audio + noise * np.sqrt(signal_power / 10 ** (snr_db / 10))


def shift_pitch(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    steps = rng.uniform(-PITCH_SEMITONES, PITCH_SEMITONES)
    return librosa.effects.pitch_shift(audio, sr=SAMPLE_RATE, n_steps=steps)


def change_speed(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Resampling, then playing at the old rate, changes tempo and pitch together (Kaldi's speed perturbation).
    return soxr.resample(audio, SAMPLE_RATE, SAMPLE_RATE / rng.uniform(*SPEED))


def change_gain(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return audio * 10 ** (rng.uniform(-GAIN_DB, GAIN_DB) / 20)


def shift_in_time(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    offset = int(rng.uniform(-SHIFT_S, SHIFT_S) * SAMPLE_RATE)
    if offset >= 0:
        return np.concatenate([np.zeros(offset, dtype=audio.dtype), audio])
    return audio[-offset:] if audio.size > -offset * 4 else audio


AUGMENTATIONS = (add_noise, shift_pitch, change_speed, change_gain, shift_in_time)


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mix of the augmentations, each applied with probability one half (at least one)."""
    chosen = [step for step in AUGMENTATIONS if rng.random() < 0.5] or [AUGMENTATIONS[rng.integers(5)]]
    for step in chosen:
        audio = step(audio, rng)
    return audio.astype(np.float32)
