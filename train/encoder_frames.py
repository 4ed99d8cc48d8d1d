"""Whisper-encoder frames of training clips, computed once and cached on disk as float16.

    python -m train.encoder_frames                 # every clip in shared/: ~25 min on 2 cores

Each clip is encoded exactly as the analyser encodes it while transcribing (the transcriber's own window),
so the speech model trains on the frames it will be given. One file a clip, so an interrupted run resumes.
"""

import argparse
import hashlib
import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emotion import asr, settings
from emotion.audio import load_audio
from emotion.errors import EmotionError
from emotion.speech import ENCODER
from train.corpora import find_clips

CACHE_DIR = settings.CACHE_DIR / "speech-encoder"


def encoder_settings() -> dict:
    """What decides a clip's frames besides its audio: a change to any of these needs a fresh cache."""
    return {
        "engine": ENCODER["engine"],
        "model": asr.PACKAGED_FOLDER,
        "min_window_seconds": settings.ASR_MIN_WINDOW_SECONDS,
        "window_margin_mel_frames": asr.WINDOW_MARGIN_MEL_FRAMES,
        "min_clip_seconds": asr.MIN_CLIP_SECONDS,
    }


def cache_folder(cache_dir: Path = CACHE_DIR) -> Path:
    key = hashlib.sha1(json.dumps(encoder_settings(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / key


def _cache_file(folder: Path, path: Path) -> Path:
    resolved = path.resolve()
    key = hashlib.sha1(f"{resolved}:{resolved.stat().st_size}".encode()).hexdigest()[:20]
    return folder / f"{key}.npy"


def _start_worker() -> None:
    # Two single-threaded encoders use two cores better than one encoder with two threads (1.5x).
    settings.ASR_THREADS = 1


def _encode(job: tuple[Path, Path]) -> None:
    path, target = job
    try:
        frames = asr.load_transcriber(ENCODER["engine"], ENCODER["model"]).encode(load_audio(path))
    except EmotionError as error:
        tqdm.write(f"skipped {path.name}: {error}")
        frames = np.zeros((0, 0))  # remembered as unusable, so the next run does not try it again
    scratch = target.with_suffix(".partial.npy")
    np.save(scratch, frames.astype(np.float16))
    scratch.replace(target)  # a run stopped halfway leaves no half-written file behind


def load_encoder_frames(
    paths: list[Path], cache_dir: Path = CACHE_DIR, workers: int = 2
) -> list[np.ndarray | None]:
    """(frames, 512) float16 for each path, None for an unreadable clip; encodes what is not cached yet."""
    folder = cache_folder(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(encoder_settings(), indent=2) + "\n")
    targets = [_cache_file(folder, path) for path in paths]
    missing = [(path, target) for path, target in zip(paths, targets, strict=True) if not target.is_file()]
    if missing:
        with Pool(workers, initializer=_start_worker) as pool:
            for _ in tqdm(pool.imap_unordered(_encode, missing, chunksize=4), total=len(missing),
                          desc="encoder frames"):  # fmt: skip
                pass
    stored = [np.load(target) if target.is_file() else None for target in targets]
    return [frames if frames is not None and frames.size else None for frames in stored]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, nargs="+", default=[settings.DATA_DIR / "speech"])
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    clips = find_clips(*args.data)
    frames = load_encoder_frames([clip.path for clip in clips], args.cache_dir, args.workers)
    encoded = sum(f is not None for f in frames)
    print(f"{encoded} of {len(clips)} clips encoded in {cache_folder(args.cache_dir)}")
