"""Linear models whose probabilities are averaged with a language's LSTM ensemble.

A head reads its own features of a text, gives the log-odds of "negative" (a logistic regression trained by
`train/text.py` on the same rows as the LSTM) and takes `share` of the answer. Two kinds:
- English: a pre-trained sentence encoder's vector (`emotion.sentence_encoder.EncoderHead`);
- Chinese: which character 1-3-grams a text holds, each weighted by its naive-Bayes log-count ratio
  (`NgramHead`, Wang & Manning's NBSVM with a logistic loss). Over four validation folds the average read
  95.07% against 94.50% for the LSTM alone (docs/text.md).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from emotion.text_model import MAX_CHARS, normalise

NGRAM_SIZES = (1, 2, 3)


@dataclass
class LinearHead:
    coef: np.ndarray  # one weight a feature, for the log-odds of "negative"
    intercept: float
    share: float  # of the averaged answer; the LSTM ensemble has the rest

    def probabilities_from(self, features: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        """(positive, negative) a row of features (computed once when training)."""
        negative = 1 / (1 + np.exp(-(features @ self.coef + self.intercept)))
        return np.stack([1 - negative, negative], axis=1)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.probabilities_from(self.features(texts))


def char_ngrams(text: str) -> set[str]:
    """Every character 1-, 2- and 3-gram of the normalised text (its first MAX_CHARS characters)."""
    text = normalise(text)[:MAX_CHARS]
    return {text[i : i + n] for n in NGRAM_SIZES for i in range(len(text) - n + 1)}


@dataclass
class NgramHead(LinearHead):
    ngrams: dict[str, int]  # n-gram -> its column; n-grams that training never saw are ignored

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """One row a text: 1 in the column of each known n-gram it holds (presence, not counts)."""
        rows, columns = [], []
        for row, text in enumerate(texts):
            found = [self.ngrams[gram] for gram in char_ngrams(text) if gram in self.ngrams]
            rows += [row] * len(found)
            columns += found
        values = np.ones(len(columns), dtype=np.float32)
        return sparse.csr_matrix((values, (rows, columns)), shape=(len(texts), len(self.ngrams)))

    def save(self, path: Path) -> None:
        """n-gram -> weight (6 significant digits), intercept, share: about 3 MB for 130,000 n-grams."""
        weights = {gram: float(f"{self.coef[i]:.6g}") for gram, i in self.ngrams.items()}
        head = {"kind": "char 1-3-gram presence", "share": self.share, "intercept": float(self.intercept)}
        path.write_text(json.dumps(head | {"weights": weights}, ensure_ascii=False) + "\n", encoding="utf-8")


def load_ngram_head(path: Path) -> NgramHead:
    head = json.loads(path.read_text(encoding="utf-8"))
    ngrams = {gram: i for i, gram in enumerate(head["weights"])}
    coef = np.array(list(head["weights"].values()), dtype=np.float32)
    return NgramHead(coef, head["intercept"], head["share"], ngrams)
