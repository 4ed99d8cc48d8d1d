"""The text-sentiment network and everything between a string and its input: tokenisers, vocabulary, batching.

Shared by training (`train/text.py`) and inference (`emotion/text.py`), so that both cut text the same way.
"""

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import accumulate
from types import ModuleType

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emotion import settings

PAD, UNK = "<pad>", "<unk>"
MAX_CHARS = 2000  # a text is cut to its start before tokenising, so a 100,000-character text is fast

_WHITESPACE = re.compile(r"\s+")
# An English word, with its inner apostrophes ("doesn't", "century's"), or any single other visible character.
_ENGLISH_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII), lower case, no stray byte-order marks, single spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\ufeff", "").replace("’", "'").lower()
    return _WHITESPACE.sub(" ", text).strip()


@cache
def _jieba() -> ModuleType:
    import jieba

    jieba.setLogLevel(60)  # jieba prints its dictionary loading to stderr otherwise
    # Its dictionary cache belongs with the user's other caches, not in the shared temporary folder.
    settings.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    jieba.dt.tmp_dir = str(settings.CACHE_DIR)
    return jieba


def tokenize_zh(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """jieba words, whitespace dropped; long texts are cut to their start before segmenting."""
    return [word for word in _jieba().lcut(normalise(text)[:max_chars]) if not word.isspace()]


def tokenize_en(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Lower-cased words with their apostrophes; every other visible character (punctuation, emoji) alone."""
    return _ENGLISH_TOKEN.findall(normalise(text)[:max_chars])


TOKENIZERS = {"zh": tokenize_zh, "en": tokenize_en}


def ngrams_zh(text: str, n: int, max_chars: int = MAX_CHARS) -> list[str]:
    """Character 1- to n-grams of the normalised text, spaces included, as TF-IDF's char analyser reads it."""
    chars = normalise(text)[:max_chars]
    return [chars[i : i + k] for k in range(1, n + 1) for i in range(len(chars) - k + 1)]


def ngrams_en(text: str, n: int, max_chars: int = MAX_CHARS) -> list[str]:
    """Word 1- to n-grams of `tokenize_en`'s tokens, joined by a space (no token holds one)."""
    tokens = tokenize_en(text, max_chars)
    return [" ".join(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)]


NGRAMS = {"zh": ngrams_zh, "en": ngrams_en}


class Vocabulary:
    """Token <-> id. Id 0 pads, id 1 is any unknown token. With `char_fallback`, an unknown word is spelt
    out in its characters, which gives the network something for the words jieba invents on new text."""

    def __init__(self, tokens: Sequence[str], char_fallback: bool = False):
        self.tokens = list(tokens)
        self.char_fallback = char_fallback
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(
        cls, texts: Iterable[Sequence[str]], max_size: int, min_count: int = 2, char_fallback: bool = False
    ) -> "Vocabulary":
        words, chars = Counter(), Counter()
        for tokens in texts:
            words.update(tokens)
            if char_fallback:
                chars.update(char for token in tokens for char in token)
        kept = [PAD, UNK]
        if char_fallback:  # every character seen often enough first, so that a fallback never hits <unk>
            kept += [char for char, count in chars.most_common() if count >= min_count]
        seen = set(kept)
        for word, count in words.most_common():
            if len(kept) >= max_size or count < min_count:
                break
            if word not in seen:
                kept.append(word)
                seen.add(word)
        return cls(kept[:max_size], char_fallback)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str], max_tokens: int) -> list[int]:
        ids = []
        for token in tokens:
            if token in self.index:
                ids.append(self.index[token])
            elif self.char_fallback and len(token) > 1:
                ids.extend(self.index.get(char, 1) for char in token)
            else:
                ids.append(1)
            if len(ids) >= max_tokens:
                break
        return ids[:max_tokens] or [1]  # an input of only unknown symbols still gets one step


class NgramVocabulary:
    """N-gram <-> id for the network's linear path. A text is the set of its known n-grams (presence, not
    counts, as in NBSVM); n-grams never seen in training are dropped, so a text may have an empty bag."""

    def __init__(self, ngrams: Sequence[str], language: str, n: int):
        self.ngrams = list(ngrams)
        self.language = language
        self.n = n
        self.index = {ngram: i for i, ngram in enumerate(self.ngrams)}

    @classmethod
    def build(
        cls, texts: Iterable[str], language: str, n: int, max_size: int, min_count: int = 2
    ) -> "NgramVocabulary":
        """The `max_size` n-grams in most texts, at least `min_count`; ties by the n-gram, so that the
        order (and the ids) never depends on Python's string hashing."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(set(NGRAMS[language](text, n)))
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_count), key=lambda x: (-x[1], x[0])
        )
        return cls([ngram for ngram, _ in ranked[:max_size]], language, n)

    def __len__(self) -> int:
        return len(self.ngrams)

    def encode(self, text: str) -> list[int]:
        """Sorted ids of the text's known n-grams: a fixed order keeps the bag's float sum reproducible."""
        return sorted({self.index[g] for g in NGRAMS[self.language](text, self.n) if g in self.index})


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (batch, longest) and the true lengths."""
    lengths = torch.tensor([len(ids) for ids in sequences], dtype=torch.long)
    batch = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return batch, lengths


def bag_batch(bags: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The bags end to end and where each starts: `nn.EmbeddingBag`'s input (an empty bag gives zeros)."""
    flat = torch.tensor([i for bag in bags for i in bag], dtype=torch.long)
    offsets = torch.tensor([0, *accumulate(len(bag) for bag in bags)][:-1], dtype=torch.long)
    return flat, offsets


Bags = tuple[torch.Tensor, torch.Tensor]  # `bag_batch`'s n-gram ids and offsets


class SentimentLSTM(nn.Module):
    """Word embeddings -> (bi-)LSTM over the real tokens only (packed, so padding never enters the recurrence)
    -> mean and max of its outputs over the real tokens -> logits for SENTIMENTS (positive, negative).

    With `n_ngrams`, a second, linear path (fastText / NBSVM style) adds its logits: one learnt pair of
    logits an n-gram, summed or averaged (`ngram_mode`) over the text's bag of n-grams. It sees the whole
    text, where the LSTM reads only its first tokens, and keeps the phrases a linear model is good at."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        bidirectional: bool,
        dropout: float,
        n_ngrams: int = 0,
        ngram_mode: str = "mean",
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size * (2 if bidirectional else 1), 2)
        self.ngrams = nn.EmbeddingBag(n_ngrams, 2, mode=ngram_mode) if n_ngrams else None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, bags: Bags | None = None) -> torch.Tensor:
        steps = ids.shape[1]
        embedded = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=steps)
        mask = (torch.arange(steps, device=ids.device)[None, :] < lengths[:, None].to(ids.device))[..., None]
        mean = (outputs * mask).sum(1) / mask.sum(1)
        peak = outputs.masked_fill(~mask, float("-inf")).max(1).values
        logits = self.head(self.dropout(torch.cat([mean, peak], dim=1)))
        if self.ngrams is not None:
            logits = logits + self.ngrams(*bags)
        return logits


class SentimentEnsemble(nn.Module):
    """Several `SentimentLSTM` members of the same shape (different seeds); their probabilities are averaged.
    `forward` gives the log of that average, so a softmax over it is the ensemble's probability."""

    def __init__(self, members: int, *args, **kwargs):
        super().__init__()
        self.members = nn.ModuleList(SentimentLSTM(*args, **kwargs) for _ in range(members))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, bags: Bags | None = None) -> torch.Tensor:
        probabilities = torch.stack([torch.softmax(m(ids, lengths, bags), dim=1) for m in self.members])
        probabilities = probabilities.mean(0)
        return probabilities.clamp_min(1e-12).log()
