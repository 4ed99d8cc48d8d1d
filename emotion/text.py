"""The text-sentiment branch: positive/negative for a transcript, in Chinese or English.

One model a language (see `emotion.text_model`), trained by `python -m train.text` into weights/text/.
Empty or whitespace-only text has no sentiment: `predict` gives None for it and the branch is left out.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emotion import settings
from emotion.errors import EmotionError
from emotion.labels import LANGUAGES, SENTIMENTS
from emotion.linear_head import LinearHead, load_ngram_head
from emotion.sentence_encoder import load_head
from emotion.text_model import TOKENIZERS, SentimentEnsemble, Vocabulary, pad_batch, unpack_state
from emotion.transformer_head import TransformerHead, load_transformer_head

# Han ideographs (basic, extension A, compatibility) and the CJK punctuation and full-width forms around them.
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_LETTER = re.compile(r"[^\W\d_]")  # any letter of any script
_BATCH = 256
# Models whose probabilities are averaged with a language's LSTM, in this order, each taking its share of what
# came before: {language}-{file} beside the LSTM's weights.
HEAD_LOADERS = {
    "encoder.json": load_head,  # English: a sentence encoder's vectors -> logistic regression
    "ngrams.json": load_ngram_head,  # Chinese: character 1-3-grams -> logistic regression
    "transformer.pt": load_transformer_head,  # Chinese: a fine-tuned pre-trained transformer
}
Head = LinearHead | TransformerHead


@dataclass
class Sentiment:
    text: str
    language: str  # "zh" or "en"
    label: str  # one of SENTIMENTS
    scores: dict[str, float]  # one probability a label of SENTIMENTS, summing to 1

    def to_json(self) -> dict:
        """The `python -m emotion sentiment` line: text, language, label, scores."""
        return {"text": self.text, "language": self.language, "label": self.label, "scores": self.scores}


def detect_language(text: str, asr_language: str | None = None) -> str:
    """'zh' when the text is mostly CJK (more CJK characters than other letters), else 'en'. The ASR's
    detected language wins when the branch has a model for it; other ASR languages leave it to the text."""
    if asr_language in LANGUAGES:
        return asr_language
    cjk = len(_CJK.findall(text))
    letters = len(_LETTER.findall(text))  # counts the Han characters too, so the others are letters - cjk
    return "zh" if cjk > 0 and cjk >= letters - cjk else "en"


class SentimentModel:
    """Both languages' networks, loaded once; `predict` judges many texts in a few batched forward passes."""

    def __init__(
        self,
        networks: dict[str, tuple[SentimentEnsemble, Vocabulary, int]],
        heads: dict[str, list[Head]] | None = None,
    ):
        self.networks = networks
        self.heads = heads or {}  # a language's other models, averaged with its LSTM (HEAD_LOADERS)

    def predict(
        self, texts: Sequence[str], language: str = "auto", asr_language: str | None = None
    ) -> list[Sentiment | None]:
        """One result a text, in input order; None for empty or whitespace-only text. `language` "zh"/"en"
        forces the model; "auto" takes the ASR's language when given, else looks at the characters."""
        if language not in (*LANGUAGES, "auto"):
            raise EmotionError(f"Unknown language {language!r}: use zh, en or auto.")
        results: list[Sentiment | None] = [None] * len(texts)
        by_language: dict[str, list[int]] = {code: [] for code in LANGUAGES}
        for i, text in enumerate(texts):
            if text and not text.isspace():
                code = language if language != "auto" else detect_language(text, asr_language)
                by_language[code].append(i)
        for code, indices in by_language.items():
            if not indices:
                continue
            network, vocab, max_tokens = self.networks[code]
            tokenize = TOKENIZERS[code]
            encoded = [vocab.encode(tokenize(texts[i]), max_tokens) for i in indices]
            # longest first in batches of similar length: little padding, and thousands of texts in seconds
            order = sorted(range(len(indices)), key=lambda j: len(encoded[j]), reverse=True)
            probabilities = np.zeros((len(indices), len(SENTIMENTS)), dtype=np.float32)
            with torch.inference_mode():
                for start in range(0, len(order), _BATCH):
                    chunk = order[start : start + _BATCH]
                    ids, lengths = pad_batch([encoded[j] for j in chunk])
                    probabilities[chunk] = torch.softmax(network(ids, lengths).float(), dim=1).numpy()
            for head in self.heads.get(code, []):
                head_probabilities = head.probabilities([texts[i] for i in indices])
                probabilities = blend(probabilities, head_probabilities, head.share)
            for i, row in zip(indices, probabilities.tolist(), strict=True):
                scores = dict(zip(SENTIMENTS, row, strict=True))
                results[i] = Sentiment(texts[i], code, max(scores, key=scores.get), scores)
        return results


def blend(probabilities: np.ndarray, head_probabilities: np.ndarray, share: float) -> np.ndarray:
    """Two models' (positive, negative) probabilities averaged, `share` to the second."""
    return (1 - share) * probabilities + share * head_probabilities


def _load_network(weights_dir: Path, code: str) -> tuple[SentimentEnsemble, Vocabulary, int]:
    paths = [
        weights_dir / f"{code}.pt",
        weights_dir / f"{code}-vocab.json",
        weights_dir / f"{code}-settings.json",
    ]
    missing = [path.name for path in paths if not path.exists()]
    if missing:
        raise EmotionError(
            f"The text-sentiment weights are missing from {weights_dir} ({', '.join(missing)}). "
            "Train them with `python -m train.text`."
        )
    config = json.loads(paths[2].read_text(encoding="utf-8"))
    vocab = Vocabulary(json.loads(paths[1].read_text(encoding="utf-8")), config["char_fallback"])
    network = SentimentEnsemble(
        config.get("members", 1),
        len(vocab),
        config["embedding_dim"],
        config["hidden_size"],
        config["bidirectional"],
        config["dropout"],
    )
    state = torch.load(paths[0], map_location="cpu", weights_only=True)
    try:
        network.load_state_dict(unpack_state(state))
    except RuntimeError as error:
        raise EmotionError(
            f"The text-sentiment weights in {weights_dir} do not fit this version of the code. "
            "Retrain them with `python -m train.text`, or restore the committed weights."
        ) from error
    network.eval()
    return network, vocab, config["max_tokens"]


def load_sentiment_model(weights_dir: Path = settings.WEIGHTS_DIR) -> SentimentModel:
    """Both languages from weights_dir/text/ (or weights_dir itself when it holds the files directly), each
    with the models that lie beside its weights (HEAD_LOADERS)."""
    folder = weights_dir / "text" if (weights_dir / "text").is_dir() else weights_dir
    heads = {code: [] for code in LANGUAGES}
    for code in LANGUAGES:
        for name, load in HEAD_LOADERS.items():
            path = folder / f"{code}-{name}"
            head = load(path) if path.exists() else None  # None also where its package is missing (it warned)
            if head is not None:
                heads[code].append(head)
    return SentimentModel({code: _load_network(folder, code) for code in LANGUAGES}, heads)
