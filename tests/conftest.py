"""Fixtures made by the tests themselves: synthesised speech and generated signals, never corpus files."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emotion.audio import SAMPLE_RATE
from emotion.synth import synthesize

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def english_speech() -> np.ndarray:
    return synthesize("I am really happy today, everything went wonderfully well.", "en")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory, english_speech: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("clips") / "speech.wav"
    soundfile.write(path, english_speech, SAMPLE_RATE)
    return path


def encode_with_ffmpeg(source: Path, target: Path, *options: str) -> Path:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *options, str(target)]
    subprocess.run(command, check=True, timeout=60)
    return target
