"""Whisper-encoder frames of training clips, computed once and cached on disk as float16.

    python -m train.encoder_frames                 # every clip in shared/: 12-15 min on 2 cores
    python -m train.encoder_frames --copies 1      # and one augmented copy of each: ~15 min more

Each clip is encoded exactly as the analyser encodes it while transcribing (the transcriber's own window),
so the speech model trains on the frames it will be given: the CNN's block (float16) and, for the layer probe,
every layer's mean and standard deviation over the clip; the same for each augmented copy, with its acoustic
features. One file a clip, so an interrupted run resumes.
An augmented copy is drawn from the clip's name, the copy's number and the seed alone, so every split and
every run that asks for it finds the same copy in the cache, with the acoustic features of the same audio.
"""

import argparse
import hashlib
import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emotion import asr, features, settings
from emotion.audio import load_audio
from emotion.errors import EmotionError
from emotion.speech import ENCODER, layer_index, layer_statistics
from emotion.whisper_encoder import BLOCK_DTYPE
from train import augment
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
        "frame_layer": asr.FRAME_LAYER,
        "block_dtype": str(BLOCK_DTYPE),  # bfloat16 frames differ a little from float32 ones
    }


def original_settings() -> dict:
    """What decides a clip's cached frames and statistics besides its audio."""
    return encoder_settings() | {"statistics": "mean and std of every layer"}


def augmented_settings(seed: int) -> dict:
    """What decides an augmented copy besides its clip: the encoder, the augmentation and the features."""
    return original_settings() | {
        "seed": seed,
        "augment": augment.CACHE_KEY,
        "features": features.CACHE_KEY,
    }


def cache_folder(cache_dir: Path = CACHE_DIR, folder_settings: dict | None = None) -> Path:
    chosen = folder_settings or encoder_settings()
    key = hashlib.sha1(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(chosen, indent=2) + "\n")
    return folder


def _cache_file(folder: Path, path: Path, suffix: str = ".npy") -> Path:
    resolved = path.resolve()
    key = hashlib.sha1(f"{resolved}:{resolved.stat().st_size}".encode()).hexdigest()[:20]
    return folder / f"{key}{suffix}"


def _start_worker() -> None:
    # Two single-threaded encoders use two cores better than one encoder with two threads (1.5x).
    settings.ASR_THREADS = 1
    torch.set_num_threads(1)


def _encode(audio: np.ndarray) -> np.ndarray:
    """Every layer's frames, (frames, layers, dims) float32."""
    return asr.load_transcriber(ENCODER["engine"], ENCODER["model"]).encode(audio)


def _kept_frames(encoded: np.ndarray) -> np.ndarray:
    return encoded[:, layer_index(ENCODER["layer"])].astype(np.float16)


def _encode_job(job: tuple[Path, Path, int, int]) -> None:
    """Cache the frames and layer statistics of a clip (copy 0) or of an augmented copy, with the copy's
    acoustic features."""
    path, target, copy, seed = job
    try:
        audio = load_audio(path)
    except EmotionError as error:
        tqdm.write(f"skipped {path.name}: {error}")
        audio = None  # remembered as unusable (empty arrays), so the next run does not try it again
    scratch = target.with_suffix(".partial" + target.suffix)
    arrays = {"frames": np.zeros((0, 0)), "statistics": np.zeros(0)}
    if copy:
        arrays = {"acoustic": np.zeros((0, 0))} | arrays
    if audio is not None:
        if copy:
            name_number = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)
            audio = augment.augment(audio, np.random.default_rng([seed, copy, name_number]))
            arrays["acoustic"] = features.extract_features(audio).astype(np.float16)
        encoded = _encode(audio)  # every block, for a copy too: the layer probe reads the copies
        arrays |= {"frames": _kept_frames(encoded), "statistics": layer_statistics(encoded)}
    with open(scratch, "wb") as file:
        np.savez(file, **arrays)
    scratch.replace(target)  # a run stopped halfway leaves no half-written file behind


def _fill_cache(jobs: list[tuple[Path, Path, int, int]], workers: int) -> None:
    missing = [job for job in jobs if not job[1].is_file()]
    if workers == 1:  # in this process: a fork of one whose encoder threads already run can hang in the child
        for job in tqdm(missing, desc="encoder frames"):
            _encode_job(job)
    elif missing:
        with Pool(workers, initializer=_start_worker) as pool:
            for _ in tqdm(pool.imap_unordered(_encode_job, missing, chunksize=4), total=len(missing),
                          desc="encoder frames"):  # fmt: skip
                pass


def load_encoder_frames(
    paths: list[Path], cache_dir: Path = CACHE_DIR, workers: int = 2
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """For each path, the CNN's block's frames, (frames, 512) float16, and every layer's statistics
    (layer_statistics); None for an unreadable clip. Encodes what is not cached yet."""
    folder = cache_folder(cache_dir, original_settings())
    targets = [_cache_file(folder, path, ".npz") for path in paths]
    _fill_cache([(path, target, 0, 0) for path, target in zip(paths, targets, strict=True)], workers)
    loaded = []
    for target in targets:
        with np.load(target) as stored:
            loaded.append((stored["frames"], stored["statistics"]) if stored["frames"].size else None)
    return loaded


def load_augmented_copies(
    paths: list[Path], copies: int, seed: int, cache_dir: Path = CACHE_DIR, workers: int = 2
) -> list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """For each path, its usable augmented copies as (acoustic features, the CNN's block's frames, both
    float16, every layer's statistics)."""
    folder = cache_folder(cache_dir, augmented_settings(seed))
    jobs = [
        (path, _cache_file(folder, path, f"-{copy}.npz"), copy, seed)
        for path in paths
        for copy in range(1, copies + 1)
    ]
    _fill_cache(jobs, workers)
    per_clip: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in paths]
    for index, (_, target, _, _) in enumerate(jobs):
        with np.load(target) as stored:
            if stored["frames"].size:
                per_clip[index // copies].append((stored["acoustic"], stored["frames"], stored["statistics"]))
    return per_clip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, nargs="+", default=[settings.DATA_DIR / "speech"])
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=0, help="augmented copies of each clip to encode too")
    parser.add_argument("--seed", type=int, default=0, help="draws the augmented copies")
    args = parser.parse_args()
    paths = [clip.path for clip in find_clips(*args.data)]
    frames = load_encoder_frames(paths, args.cache_dir, args.workers)
    encoded = sum(f is not None for f in frames)
    print(f"{encoded} of {len(paths)} clips encoded in {cache_folder(args.cache_dir, original_settings())}")
    if args.copies:
        copies = load_augmented_copies(paths, args.copies, args.seed, args.cache_dir, args.workers)
        folder = cache_folder(args.cache_dir, augmented_settings(args.seed))
        print(f"{sum(map(len, copies))} augmented copies encoded in {folder}")
