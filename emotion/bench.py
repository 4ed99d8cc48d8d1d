"""`python -m emotion bench`: how fast the analyser answers, stage by stage, and how much memory it needs.

The clips are made here (eSpeak NG speech, cut to exact lengths) and written as WAV, so that decoding is
measured from a file as a user's upload is. Every stage is timed by the Analyzer itself (timings_ms); the
plots around emotion.plots; end to end around Analyzer.analyze. Warm runs only: each clip is analysed once
before it is timed. The table is Markdown (BENCHMARKS.md takes it as printed); the last line is one JSON
object with the headline figures.
"""

import json
import os
import platform
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from emotion import settings
from emotion.analysis import Analyzer
from emotion.audio import SAMPLE_RATE, load_audio
from emotion.errors import EmotionError
from emotion.speech import ACOUSTIC_MODEL, checkpoint_path, load_speech_model

CLIP_SECONDS = (2.0, 4.0, 8.0, 30.0, 120.0)
QUICK_CLIP_SECONDS = (2.0, 4.0, 8.0, 30.0)
RUNS = 10
QUICK_RUNS = 2
# Clips this long or longer take seconds a run: a third of the runs tell their median well enough.
LONG_CLIP_SECONDS = 30.0
SPEECH_ONLY_CLIPS = 200
QUICK_SPEECH_ONLY_CLIPS = 20
SPEECH_ONLY_CLIP_SECONDS = 4.0
# openai-whisper always encodes a full 30-s window on the CPU: it is compared on the clips up to that length.
OPENAI_MAX_SECONDS = 30.0
OPENAI_RUNS = 3
OPENAI_CHECKPOINT_VARIABLE = "EMOTION_OPENAI_WHISPER_CHECKPOINT"
COLD_START_TIMEOUT_S = 300

SENTENCES = (
    "I can't believe we finally made it here after all this time.",
    "The weather turned cold this morning, so I stayed inside and read.",
    "Please tell me honestly what you think about the plan.",
    "We lost the match again, and nobody wants to talk about it.",
)
# Between two sentences, as a speaker pauses; gives long clips the quiet moments that segmentation cuts at.
PAUSE_SECONDS = 0.4
# "encoder": Whisper's encoder run for the speech model alone, when nothing is transcribed; while
# transcribing, the speech model reads the frames the transcription already computed.
STAGES = ("decode", "encoder", "features", "speech_model", "transcription", "text", "fusion", "plots")
SPEECH_BRANCH = ("decode", "encoder", "features", "speech_model")
# The default speech model against the acoustic-only one, on the 4-s clip, runs alternating between them.
COMPARISON_CLIP = "4s"
ENCODER_DIMS = 512  # Whisper base

# The issues' targets on a 2-core machine: (headline key, "<=" or ">=", limit, unit).
TARGETS = (
    ("e2e_p50_ms_4s", "<=", 1500.0, "ms"),
    ("speech_branch_p50_ms_4s", "<=", 60.0, "ms"),
    ("cold_start_s", "<=", 15.0, "s"),
    ("peak_rss_mb", "<=", 1536.0, "MB"),
    ("rtf_120s", "<=", 0.5, "x"),
    ("e2e_4s_over_acoustic", "<=", 1.1, "x"),
    ("speech_only_clips_per_s", ">=", 2.0, "/s"),
    ("speech_only_clips_per_s_acoustic", ">=", 10.0, "/s"),
)


@dataclass
class ClipTimings:
    name: str
    seconds: float
    runs: list[dict[str, float]] = field(default_factory=list)  # stage -> ms, plus "e2e" and "e2e_plots"

    def values(self, stage: str) -> list[float]:
        return [run[stage] for run in self.runs if stage in run]

    def p50(self, stage: str) -> float | None:
        values = self.values(stage)
        return float(np.median(values)) if values else None

    def p95(self, stage: str) -> float | None:
        values = self.values(stage)
        return float(np.percentile(values, 95)) if values else None


def make_clips(folder: Path, seconds: Sequence[float]) -> dict[str, Path]:
    """Synthesised English speech, sentence after sentence, cut to exactly each length; one WAV each."""
    pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    spoken = np.concatenate([part for sentence in SENTENCES for part in (synthesize(sentence), pause)])
    clips = {}
    for length in seconds:
        samples = int(round(length * SAMPLE_RATE))
        audio = np.tile(spoken, samples // spoken.size + 1)[:samples]
        path = folder / f"speech_{length:g}s.wav"
        soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
        clips[f"{length:g}s"] = path
    return clips


def synthesize(text: str) -> np.ndarray:
    from emotion.synth import synthesize as espeak

    return espeak(text, "en")


def timing_weights(
    scratch: Path, speech_models: Sequence[str] = (settings.SPEECH_MODEL, ACOUSTIC_MODEL)
) -> tuple[Path, list[str]]:
    """A weights folder to time with, and notes naming the models in it that are untrained stand-ins.

    A model not trained yet is replaced by an untrained network of the trained one's shape: it takes the same
    time, and its answers mean nothing. With every model trained, this is the project's own folder.
    """
    untrained = [name for name in dict.fromkeys(speech_models) if not checkpoint_path(name).is_file()]
    text_ready = _text_model_loads(settings.WEIGHTS_DIR)
    if not untrained and text_ready:
        return settings.WEIGHTS_DIR, []
    folder = scratch / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    if settings.WEIGHTS_DIR.is_dir():
        for item in settings.WEIGHTS_DIR.iterdir():
            # A half-trained text/ folder is not linked: the stand-in is written there instead.
            if not (folder / item.name).exists() and (text_ready or item.name != "text"):
                (folder / item.name).symlink_to(item)
    notes = []
    for name in untrained:
        _save_untrained_speech_model(folder, name)
        notes.append(f"no trained speech model {name!r}: timed an untrained network of its shape")
    if not text_ready:
        _save_untrained_text_model(folder / "text")
        notes.append("no trained text model: timed untrained LSTMs of its shape")
    return folder, notes


def _text_model_loads(weights_dir: Path) -> bool:
    try:
        from emotion.text import load_sentiment_model

        load_sentiment_model(weights_dir)
        return True
    except Exception:  # missing, half-written or from an older version of the code: not usable for timing
        return False


def _save_untrained_speech_model(folder: Path, name: str) -> None:
    from emotion.ensemble import Ensemble
    from emotion.features import N_FEATURES
    from emotion.labels import EMOTIONS
    from emotion.speech import ENCODER, SpeechCNN, save_speech_model

    metadata = {"labels": list(EMOTIONS), "note": "untrained, for timing only"}
    # Any name but the acoustic model's stands for the default: features and encoder frames.
    encoder_dims = 0 if name == ACOUSTIC_MODEL else ENCODER_DIMS
    network = Ensemble([SpeechCNN(N_FEATURES, utterance_norm=True, encoder_dims=encoder_dims)])
    save_speech_model(network, name, metadata, folder, ENCODER if encoder_dims else None)


# The shape of train/text.py's networks; the vocabulary's size changes only a table lookup, not the time.
UNTRAINED_TEXT = {"embedding_dim": 64, "hidden_size": 64, "bidirectional": True, "dropout": 0.0}
UNTRAINED_TEXT_TOKENS = {"zh": 100, "en": 80}
UNTRAINED_VOCABULARY = 5000


def _save_untrained_text_model(folder: Path) -> None:
    import torch

    from emotion import text_model

    folder.mkdir(parents=True, exist_ok=True)
    tokens = [text_model.PAD, text_model.UNK, *(chr(0x4E00 + i) for i in range(UNTRAINED_VOCABULARY))]
    for code, max_tokens in UNTRAINED_TEXT_TOKENS.items():
        config = UNTRAINED_TEXT | {"char_fallback": code == "zh", "max_tokens": max_tokens, "members": 1}
        if hasattr(text_model, "SentimentEnsemble"):  # the saved form since ensembles: one member here
            network = text_model.SentimentEnsemble(1, len(tokens), **UNTRAINED_TEXT)
        else:
            network = text_model.SentimentLSTM(len(tokens), **UNTRAINED_TEXT)
        torch.save(network.state_dict(), folder / f"{code}.pt")
        (folder / f"{code}-vocab.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
        (folder / f"{code}-settings.json").write_text(json.dumps(config), encoding="utf-8")


def build_analyzer(
    weights_dir: Path, transcribe: bool, speech_model: str = settings.SPEECH_MODEL
) -> Analyzer:
    """The Analyzer the CLI and the app use, on the models in `weights_dir`."""
    if weights_dir == settings.WEIGHTS_DIR:
        return Analyzer(transcribe=transcribe, speech_model=speech_model)
    # The Analyzer's constructor reads the project's weights folder: the same three models, from this one.
    analyzer = object.__new__(Analyzer)
    analyzer.speech_model = load_speech_model(speech_model, weights_dir)
    analyzer.transcriber = analyzer.sentiment_model = None
    if transcribe:
        from emotion.asr import load_transcriber
        from emotion.text import load_sentiment_model

        analyzer.transcriber = load_transcriber(settings.ASR_ENGINE, settings.ASR_MODEL)
        analyzer.sentiment_model = load_sentiment_model(weights_dir)
    return analyzer


def _plots() -> Callable[[np.ndarray, dict], None] | None:
    """Draw what the app's page draws for an answer, or None where emotion.plots is not there."""
    try:
        from emotion import plots
    except ImportError:
        return None

    def draw(audio: np.ndarray, record: dict) -> None:
        segments = record.get("segments") or []
        label = (record.get("fused") or record["speech"])["label"]
        spans = [(s["start_s"], s["end_s"], s["fused"]["label"]) for s in segments]
        plots.waveform_image(audio, spans or [(0.0, record["duration_s"], label)])
        plots.feature_images(audio)
        if len(segments) > 1:
            plots.timeline_image(segments)

    return draw


def time_clip(
    analyzer: Analyzer, name: str, path: Path, runs: int, draw: Callable[[np.ndarray, dict], None] | None
) -> ClipTimings:
    audio = load_audio(path, max_seconds=settings.MAX_CLIP_SECONDS)
    timings = ClipTimings(name, audio.size / SAMPLE_RATE)
    for run in range(runs + 1):  # the first run warms caches and JIT code up and is not counted
        started, cpu_started = time.perf_counter(), time.process_time()
        analysis = analyzer.analyze(path)
        e2e = (time.perf_counter() - started) * 1000
        # CPU seconds of every thread: on a busy machine wall time grows with the load, this much less.
        stages = dict(analysis.timings_ms) | {
            "e2e": e2e,
            "e2e_cpu": (time.process_time() - cpu_started) * 1000,
        }
        if draw is not None:
            started = time.perf_counter()
            draw(audio, analysis.to_json())
            stages["plots"] = (time.perf_counter() - started) * 1000
            stages["e2e_plots"] = e2e + stages["plots"]
        stages["speech_branch"] = sum(stages.get(stage, 0.0) for stage in SPEECH_BRANCH)
        if run:
            timings.runs.append(stages)
    return timings


def against_acoustic(analyzer: Analyzer, weights_dir: Path, path: Path, runs: int) -> tuple[float, float]:
    """Median end-to-end ms of a clip with the analyzer's speech model and with the acoustic-only one, runs
    alternating between the two so that both meet the same load. They share one loaded Whisper."""
    acoustic = build_analyzer(weights_dir, transcribe=True, speech_model=ACOUSTIC_MODEL)
    times: dict[int, list[float]] = {0: [], 1: []}
    for run in range(runs + 1):  # the first run of each warms up
        for which, candidate in enumerate((analyzer, acoustic)):
            started = time.perf_counter()
            candidate.analyze(path)
            if run:
                times[which].append((time.perf_counter() - started) * 1000)
    return float(np.median(times[0])), float(np.median(times[1]))


def speech_only_throughput(analyzer: Analyzer, path: Path, count: int) -> float:
    """Clips a second through the speech-only Analyzer, as `analyze --no-transcribe` runs a batch."""
    next(iter(analyzer.analyze_many([str(path)])))  # warm
    started = time.perf_counter()
    for result in analyzer.analyze_many([str(path)] * count):
        if isinstance(result, EmotionError):
            raise result
    return count / (time.perf_counter() - started)


def cold_start(clip: Path, weights_dir: Path, transcribe: bool) -> tuple[float, float, float]:
    """Seconds from launching `python -m emotion analyze CLIP` to its first line, the CPU seconds the process
    used in all, and its peak RSS in MB."""
    command = [sys.executable, "-m", "emotion", "analyze", *([] if transcribe else ["--no-transcribe"])]
    environment = os.environ | {"EMOTION_WEIGHTS_DIR": str(weights_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # stderr to a file: warnings filling a pipe nobody reads would stall the child before its first line.
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, str(clip)], stdout=subprocess.PIPE, stderr=errors, text=True, env=environment
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], COLD_START_TIMEOUT_S)
            line = process.stdout.readline() if ready else ""
            elapsed = time.perf_counter() - started
            process.wait(timeout=COLD_START_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        errors.seek(0)
        message = errors.read().strip()[-500:]
    if not line:
        raise EmotionError(f"the CLI gave no answer (exit status {process.returncode}): {message}")
    if process.returncode != 0 or "error" in json.loads(line):
        raise EmotionError(f"the CLI failed: {line.strip() or message}")
    # ru_maxrss of children is the largest of any child so far: only a new maximum is this process's own.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, (after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else float("nan")) / 1024


def openai_ratios(
    clips: dict[str, Path], faster: dict[str, ClipTimings], notes: list[str]
) -> dict[str, float]:
    """openai-whisper's transcription time over faster-whisper's, per clip, where a checkpoint is there."""
    checkpoint = os.environ.get(OPENAI_CHECKPOINT_VARIABLE, "base")
    try:
        from emotion.asr import load_transcriber

        transcriber = load_transcriber("openai-whisper", checkpoint)
    except (EmotionError, ImportError) as error:
        notes.append(f"openai-whisper skipped: {error} (the bench reads {OPENAI_CHECKPOINT_VARIABLE})")
        return {}
    ratios = {}
    for name, path in clips.items():
        audio = load_audio(path, max_seconds=settings.MAX_CLIP_SECONDS)
        if audio.size > OPENAI_MAX_SECONDS * SAMPLE_RATE or faster[name].p50("transcription") is None:
            continue
        transcriber.transcribe(audio)  # warm
        times = []
        for _ in range(OPENAI_RUNS):
            started = time.perf_counter()
            transcriber.transcribe(audio)
            times.append((time.perf_counter() - started) * 1000)
        ratios[name] = float(np.median(times)) / faster[name].p50("transcription")
    return ratios


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {cores} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _cell(timings: ClipTimings, stage: str) -> str:
    p50, p95 = timings.p50(stage), timings.p95(stage)
    return "–" if p50 is None else f"{p50:.0f} / {p95:.0f}"


def table(results: Sequence[ClipTimings]) -> str:
    columns = [*STAGES, "speech_branch", "e2e", "e2e_cpu", "e2e_plots"]
    lines = [
        "| clip | runs | " + " | ".join(columns) + " | RTF |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for timings in results:
        rtf = timings.p50("e2e") / 1000 / timings.seconds
        cells = " | ".join(_cell(timings, stage) for stage in columns)
        lines.append(f"| {timings.name} | {len(timings.runs)} | {cells} | {rtf:.3f} |")
    return "\n".join(lines)


def headline(results: dict[str, ClipTimings], extra: dict[str, float | None]) -> dict[str, float | None]:
    def rounded(value: float | None, digits: int = 1) -> float | None:
        return None if value is None or value != value else round(value, digits)

    record: dict[str, float | None] = {}
    if "4s" in results:
        four = results["4s"]
        record |= {
            "e2e_p50_ms_4s": rounded(four.p50("e2e")),
            "e2e_p95_ms_4s": rounded(four.p95("e2e")),
            "e2e_cpu_p50_ms_4s": rounded(four.p50("e2e_cpu")),
            "e2e_plots_p50_ms_4s": rounded(four.p50("e2e_plots")),
            "speech_branch_p50_ms_4s": rounded(four.p50("speech_branch")),
        }
    for name in ("30s", "120s"):
        if name in results:
            record[f"rtf_{name}"] = rounded(results[name].p50("e2e") / 1000 / results[name].seconds, 3)

    def digits(key: str) -> int:
        return 3 if "_over_" in key else 2 if key.endswith("_s") else 1

    return record | {key: rounded(value, digits(key)) for key, value in extra.items()}


def verdicts(record: dict[str, float | None]) -> str:
    lines = ["| target | limit | measured | |", "|---|---|---|---|"]
    for key, direction, limit, unit in TARGETS:
        value = record.get(key)
        met = value is not None and (value <= limit if direction == "<=" else value >= limit)
        verdict = "not measured" if value is None else ("met" if met else "MISSED")
        shown = "–" if value is None else f"{value:g} {unit}"
        sign = "≤" if direction == "<=" else "≥"
        lines.append(f"| {key} | {sign} {limit:g} {unit} | {shown} | {verdict} |")
    return "\n".join(lines)


def run(paths: Sequence[str] = (), runs: int | None = None, quick: bool = False) -> dict[str, float | None]:
    """Run the whole benchmark, print its tables and notes, and return the headline figures."""
    runs = runs or (QUICK_RUNS if quick else RUNS)
    say = _printer()
    say(f"machine: {machine()}; python {platform.python_version()}; load average at start {load_average()}")
    with tempfile.TemporaryDirectory(prefix="emotion-bench-") as scratch:
        folder = Path(scratch)
        weights_dir, notes = timing_weights(folder)
        clips = make_clips(folder, QUICK_CLIP_SECONDS if quick else CLIP_SECONDS)
        for path in paths:
            clips[Path(path).name] = Path(path)
        say(f"clips: {', '.join(clips)} ({len(SENTENCES)} eSpeak NG sentences, cut to length)")

        cold_s, cold_cpu, cold_rss = _cold_start(clips["4s"], weights_dir, notes)
        say(
            f"cold start: {cold_s:.2f} s to the first answer ({cold_cpu:.2f} s of CPU), "
            f"{cold_rss:.0f} MB peak RSS"
        )

        analyzer = build_analyzer(weights_dir, transcribe=True)
        draw = _plots()
        if draw is None:
            notes.append("emotion.plots is not there: the plots stage is not measured")
        results: dict[str, ClipTimings] = {}
        for name, path in clips.items():
            try:
                seconds = load_audio(path, max_seconds=settings.MAX_CLIP_SECONDS).size / SAMPLE_RATE
                count = runs if seconds < LONG_CLIP_SECONDS else max(1, runs // 3)
                results[name] = time_clip(analyzer, name, path, count, draw)
            except EmotionError as error:
                notes.append(f"{name} skipped: {error}")
                continue
            say(f"  {name}: end to end {results[name].p50('e2e'):.0f} ms median over {count} runs")
        peak = peak_rss_mb()

        extra: dict[str, float | None] = {}
        if settings.SPEECH_MODEL != ACOUSTIC_MODEL:
            default_ms, acoustic_ms = against_acoustic(analyzer, weights_dir, clips[COMPARISON_CLIP], runs)
            extra |= {
                "e2e_p50_ms_4s_alternating": default_ms,
                "e2e_p50_ms_4s_acoustic": acoustic_ms,
                "e2e_4s_over_acoustic": round(default_ms / acoustic_ms, 3),
            }
            say(
                f"  {COMPARISON_CLIP}, runs alternating: {default_ms:.0f} ms with {settings.SPEECH_MODEL!r}, "
                f"{acoustic_ms:.0f} ms with {ACOUSTIC_MODEL!r}"
            )
        count = QUICK_SPEECH_ONLY_CLIPS if quick else SPEECH_ONLY_CLIPS
        speech_clip = clips[f"{SPEECH_ONLY_CLIP_SECONDS:g}s"]
        for model in dict.fromkeys((settings.SPEECH_MODEL, ACOUSTIC_MODEL)):
            speech_only = build_analyzer(weights_dir, transcribe=False, speech_model=model)
            throughput = speech_only_throughput(speech_only, speech_clip, count)
            suffix = "" if model == settings.SPEECH_MODEL else f"_{model}"
            extra[f"speech_only_clips_per_s{suffix}"] = throughput
            say(f"speech only ({model}): {throughput:.1f} clips/s over {count} clips of "
                f"{SPEECH_ONLY_CLIP_SECONDS:g} s")  # fmt: skip
        ratios = openai_ratios(clips, results, notes)

    record = headline(
        results,
        {
            "cold_start_s": cold_s,
            "cold_start_cpu_s": cold_cpu,
            "cold_start_rss_mb": cold_rss,
            "peak_rss_mb": peak,
        }
        | extra,
    )
    record |= {f"openai_whisper_ratio_{name}": round(ratio, 2) for name, ratio in ratios.items()}
    record["load_avg_1m"] = round(os.getloadavg()[0], 2)
    say("")
    say("Milliseconds, median / p95 over the warm runs (p95 interpolated between runs):")
    say(table(list(results.values())))
    say("")
    say(verdicts(record))
    if ratios:
        say("openai-whisper / faster-whisper transcription time: "
            + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items()))  # fmt: skip
    for note in notes:
        say(f"note: {note}")
    say(f"load average at end {load_average()}")
    print(json.dumps(record), flush=True)
    return record


def _cold_start(clip: Path, weights_dir: Path, notes: list[str]) -> tuple[float, float, float]:
    """The full analysis's cold start; the speech branch's alone where the full one cannot run yet."""
    for transcribe in (True, False):
        try:
            seconds, cpu, rss = cold_start(clip, weights_dir, transcribe)
        except (EmotionError, subprocess.TimeoutExpired) as error:
            notes.append(f"cold start ({'full' if transcribe else 'speech only'}) not measured: {error}")
            continue
        if not transcribe:
            notes.append("cold start and its memory are those of `analyze --no-transcribe`")
        return seconds, cpu, rss
    return float("nan"), float("nan"), float("nan")


def _printer() -> Callable[[str], None]:
    # Progress and tables go to stdout, so that the JSON line is the last line there.
    return lambda line: print(line, flush=True)


def main(paths: Sequence[str] = (), runs: int | None = None, quick: bool = False) -> int:
    if shutil.which("espeak-ng") is None:
        raise EmotionError(
            "The benchmark synthesises its clips with espeak-ng; install it (apt install espeak-ng)."
        )
    run(paths, runs, quick)
    return 0
