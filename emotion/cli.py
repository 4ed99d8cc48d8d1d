"""`python -m emotion`: analyse clips, judge the sentiment of texts, benchmark. One JSON object a line."""

import argparse
import json
import sys
from collections.abc import Iterable, Sequence

from emotion import settings
from emotion.errors import EmotionError
from emotion.labels import LANGUAGES


def _print_json(record: dict) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def _lines(texts: Sequence[str]) -> Iterable[str]:
    return texts if texts else (line.rstrip("\r\n") for line in sys.stdin)


def sentiment(args: argparse.Namespace) -> int:
    from emotion.text import load_sentiment_model

    model = load_sentiment_model()
    texts = list(_lines(args.text))
    for text, result in zip(texts, model.predict(texts, language=args.language), strict=True):
        # empty or whitespace-only text has no sentiment: the line keeps its place, with nulls
        _print_json(
            result.to_json() if result else {"text": text, "language": None, "label": None, "scores": None}
        )
    return 0


def analyze(args: argparse.Namespace) -> int:
    from emotion.analysis import Analyzer

    analyzer = Analyzer(transcribe=not args.no_transcribe, speech_model=args.speech_model)
    results = analyzer.analyze_many(args.paths, language=args.language, text_weight=args.text_weight)
    failed = False
    for path, result in zip(args.paths, results, strict=True):
        if isinstance(result, EmotionError):
            failed = True
            _print_json({"path": path, "error": str(result)})
        else:
            _print_json(result.to_json())
    return 1 if failed else 0


def bench(args: argparse.Namespace) -> int:
    from emotion.bench import main as run_bench

    return run_bench(args.paths, runs=args.runs, quick=args.quick)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emotion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    analyze_parser = commands.add_parser("analyze", help="emotion of speech clips, one JSON line per clip")
    analyze_parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="audio files (wav, flac, mp3, ogg, ...)"
    )
    analyze_parser.add_argument(
        "--no-transcribe", action="store_true", help="voice only: no Whisper, no text"
    )
    analyze_parser.add_argument("--language", choices=(*LANGUAGES, "auto"), default="auto")
    analyze_parser.add_argument(
        "--text-weight",
        type=float,
        default=settings.TEXT_WEIGHT,
        help="share of the text branch in the fused answer (default %(default)s)",
    )
    analyze_parser.add_argument(
        "--speech-model",
        default=settings.SPEECH_MODEL,
        help="speech model in weights/: whisper (acoustic features and Whisper's encoder frames) or "
        "acoustic (the features alone: smallest, fastest); default %(default)s",
    )
    analyze_parser.set_defaults(run=analyze)

    sentiment_parser = commands.add_parser("sentiment", help="positive/negative sentiment of texts")
    sentiment_parser.add_argument("--language", choices=(*LANGUAGES, "auto"), default="auto")
    sentiment_parser.add_argument(
        "text", nargs="*", help="texts to judge; without any, one a line from stdin"
    )
    sentiment_parser.set_defaults(run=sentiment)

    bench_parser = commands.add_parser(
        "bench", help="latency per stage, real-time factor, memory and cold start; last line JSON"
    )
    bench_parser.add_argument("paths", nargs="*", metavar="PATH", help="clips to time besides its own")
    bench_parser.add_argument("--runs", type=int, default=None, help="warm runs per clip (default 10)")
    bench_parser.add_argument(
        "--quick", action="store_true", help="2 runs, no 120-s clip, fewer speech-only clips: a smoke test"
    )
    bench_parser.set_defaults(run=bench)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except EmotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
