"""Load any audio file as 16 kHz mono float32, or fail with a message a person understands; cut long audio
at its pauses."""

import subprocess
from pathlib import Path

import numpy as np
import soundfile
import soxr

from emotion.errors import EmotionError

SAMPLE_RATE = 16000
# A clip whose loudest sample stays below this (-60 dBFS) holds no usable sound.
SILENCE_PEAK = 1e-3
# ffmpeg decodes the formats libsndfile cannot (mp3 on old systems, webm, m4a); a stuck decode is killed.
FFMPEG_TIMEOUT_S = 120
# A clip longer than Whisper's window is cut at its quietest moment in the last seconds before the limit:
# where in those seconds a cut may fall, and the frame on which quietness is judged.
CUT_SEARCH_SECONDS = 5.0
CUT_FRAME_SECONDS = 0.05


def load_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """Decode `path` to a 16 kHz mono float32 array.

    Raises EmotionError when the file is missing, undecodable, empty, silent or longer than `max_seconds`.
    """
    path = Path(path)
    if not path.is_file():
        raise EmotionError(f"No audio file at {path.name!r}. Record or upload a clip and try again.")
    if path.stat().st_size == 0:
        raise EmotionError(f"{path.name!r} is an empty file. Record or upload a clip with sound in it.")
    try:
        audio = _read_with_soundfile(path, max_seconds)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio = _read_with_ffmpeg(path, max_seconds)
    return check_audio(audio, path.name, max_seconds)


def check_audio(audio: np.ndarray, name: str = "the clip", max_seconds: float | None = None) -> np.ndarray:
    """Make a decoded 16 kHz signal safe to analyse: finite float32, not empty, not silent, not too long."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if audio.ndim != 1:
        raise EmotionError(
            f"{name!r} must be one channel of samples, not an array of shape {audio.shape}. "
            "Average the channels first, or pass a file."
        )
    if audio.size == 0:
        raise EmotionError(f"{name!r} holds no audio samples. Record or upload a clip with sound in it.")
    if max_seconds is not None and audio.size > max_seconds * SAMPLE_RATE + SAMPLE_RATE:
        raise EmotionError(
            f"{name!r} is longer than the {max_seconds:.0f}-second limit. Trim it or split it into parts."
        )
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise EmotionError(
            f"{name!r} is silent. Check the microphone, or choose a clip in which someone speaks."
        )
    # A float signal beyond full scale (a hot float WAV, or an array of any size) is brought down to it:
    # Whisper's log-mel overflows to NaN on samples near the float32 limit.
    return audio / peak if peak > 1.0 else audio


def _read_with_soundfile(path: Path, max_seconds: float | None) -> np.ndarray:
    with soundfile.SoundFile(path) as file:
        frames = -1 if max_seconds is None else int((max_seconds + 2) * file.samplerate)
        audio = file.read(frames, dtype="float32", always_2d=True)
        sample_rate = file.samplerate
    # Cleaned before resampling, which would spread one NaN sample over the whole clip.
    audio = np.nan_to_num(audio.mean(axis=1), nan=0.0, posinf=0.0, neginf=0.0)
    if sample_rate != SAMPLE_RATE and audio.size:
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, quality="HQ")
    return audio


def _read_with_ffmpeg(path: Path, max_seconds: float | None) -> np.ndarray:
    limit = [] if max_seconds is None else ["-t", str(max_seconds + 2)]
    command = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        *limit,
        "-f",
        "f32le",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "-",
    ]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except FileNotFoundError as error:
        raise EmotionError("ffmpeg is not installed, so only WAV, FLAC and OGG files can be read.") from error
    except subprocess.TimeoutExpired as error:
        raise EmotionError(f"Decoding {path.name!r} took too long; the file may be damaged.") from error
    if result.returncode != 0 or not result.stdout:
        raise EmotionError(
            f"{path.name!r} could not be read as audio. Use a WAV, FLAC, MP3, OGG, WebM or M4A recording."
        )
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


def split_points(audio: np.ndarray, segment_seconds: float) -> list[tuple[int, int]]:
    """(start, end) sample ranges of at most `segment_seconds`, cut at the quietest frame near each limit."""
    limit = int(segment_seconds * SAMPLE_RATE)
    frame = int(CUT_FRAME_SECONDS * SAMPLE_RATE)
    search = int(CUT_SEARCH_SECONDS * SAMPLE_RATE)
    bounds, start = [], 0
    while audio.size - start > limit:
        window = audio[start + limit - search : start + limit]
        energy = np.square(window[: window.size // frame * frame]).reshape(-1, frame).sum(axis=1)
        cut = start + limit - search + int(np.argmin(energy)) * frame + frame // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, audio.size))
    return bounds
