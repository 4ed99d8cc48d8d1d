"""Find the clips of RAVDESS and CREMA-D and read their labels and speakers from the file names.

Reads the 16 kHz FLACs in shared/ and the corpora's original downloads alike
(RAVDESS `Actor_NN/*.wav`, CREMA-D `AudioWAV/*.wav`): only the file names matter.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from emotion.labels import CREMA_D_CODES, RAVDESS_CODES

AUDIO_SUFFIXES = (".wav", ".flac")
# modality 03 (audio only) - vocal channel 01 (speech) - emotion - intensity - statement - repetition - actor
RAVDESS_NAME = re.compile(r"^03-01-(?P<emotion>0[1-8])-0[12]-0[12]-0[12]-(?P<actor>\d\d)$")
# actor _ sentence _ emotion _ level (one file of the release has a one-letter level: "1040_ITH_SAD_X")
CREMA_D_NAME = re.compile(r"^(?P<actor>\d{4})_[A-Z]{3}_(?P<emotion>[A-Z]{3})_[A-Z]{1,2}$")


@dataclass(frozen=True)
class Clip:
    path: Path
    corpus: str  # "ravdess" or "crema-d"
    speaker: str  # unique across corpora, e.g. "ravdess-17"
    emotion: str


def parse_clip(path: Path) -> Clip | None:
    """The clip's corpus, speaker and emotion from its name, or None for a file of neither corpus."""
    if match := RAVDESS_NAME.match(path.stem):
        return Clip(path, "ravdess", f"ravdess-{match['actor']}", RAVDESS_CODES[match["emotion"]])
    if (match := CREMA_D_NAME.match(path.stem)) and match["emotion"] in CREMA_D_CODES:
        return Clip(path, "crema-d", f"crema-d-{match['actor']}", CREMA_D_CODES[match["emotion"]])
    return None


def find_clips(*roots: Path) -> list[Clip]:
    """Every RAVDESS and CREMA-D clip under the given folders, sorted by path."""
    paths = sorted(p for root in roots for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return [clip for path in paths if (clip := parse_clip(path))]
