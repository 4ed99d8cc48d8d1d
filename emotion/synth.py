"""Synthesised speech from eSpeak NG, for the benchmark's clips and the tests' fixtures."""

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from emotion.audio import load_audio

# eSpeak NG reads Chinese characters as English words with `zh`/`cmn`; the pinyin voice reads them right.
VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin"}


def synthesize(text: str, language: str = "en", words_per_minute: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak `text` with eSpeak NG and return it as 16 kHz mono float32."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        voice = ["-v", VOICES[language], "-s", str(words_per_minute), "-p", str(pitch)]
        command = ["espeak-ng", *voice, "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return load_audio(wav)
