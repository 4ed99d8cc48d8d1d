"""`python -m emotion`: analyse clips, judge the sentiment of texts, benchmark. One JSON object a line."""

import argparse
import json
import sys
from collections.abc import Iterable, Sequence


def _print_json(record: dict) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def _lines(texts: Sequence[str]) -> Iterable[str]:
    return texts if texts else (line.rstrip("\n") for line in sys.stdin)


def sentiment(args: argparse.Namespace) -> int:
    from emotion.text import load_sentiment_model

    model = load_sentiment_model()
    texts = list(_lines(args.text))
    for result in model.predict(texts, language=args.language):
        _print_json(result.to_json())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emotion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sentiment_parser = commands.add_parser("sentiment", help="positive/negative sentiment of texts")
    sentiment_parser.add_argument("--language", choices=("zh", "en", "auto"), default="auto")
    sentiment_parser.add_argument("text", nargs="*", help="texts to judge; without any, one a line from stdin")
    sentiment_parser.set_defaults(run=sentiment)

    args = parser.parse_args(argv)
    return args.run(args)
