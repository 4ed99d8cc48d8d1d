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
