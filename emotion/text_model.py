"""The text-sentiment network and everything between a string and its input: tokenisers, vocabulary, batching.

Shared by training (`train/text.py`) and inference (`emotion/text.py`), so that both cut text the same way.
"""

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from types import ModuleType

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emotion import settings
from emotion.ensemble import Ensemble

PAD, UNK = "<pad>", "<unk>"
SCALE_SUFFIX = ".scale"  # beside an int8 table on disk: one scale a row

_WHITESPACE = re.compile(r"\s+")
# An English word, with its inner apostrophes ("doesn't", "century's"), or any single other visible character.
_ENGLISH_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
MAX_CHARS = 2000  # a text is read from its start: a 100,000-character paste stays fast


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


def pad_batch(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (batch, longest) and the true lengths."""
    lengths = torch.tensor([len(ids) for ids in sequences], dtype=torch.long)
    batch = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return batch, lengths


def pack_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights as stored on disk: the embedding tables, most of a file, as int8 with a float16 scale a
    row (a quarter of float32); every other float as float16."""
    packed = {}
    for name, tensor in state.items():
        if name.endswith("embedding.weight"):
            scale = tensor.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127
            packed[name] = torch.round(tensor / scale).to(torch.int8)
            packed[name + SCALE_SUFFIX] = scale.half()
        else:
            packed[name] = tensor.half() if tensor.is_floating_point() else tensor
    return packed


def unpack_state(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 weights from `pack_state`'s form (or from plain float16 files, as written before it)."""
    state = {}
    for name, tensor in packed.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if tensor.dtype == torch.int8:
            state[name] = tensor.float() * packed[name + SCALE_SUFFIX].float()
        else:
            state[name] = tensor.float() if tensor.is_floating_point() else tensor
    return state


class SentimentLSTM(nn.Module):
    """Word embeddings -> (bi-)LSTM over the real tokens only (packed, so padding never enters the recurrence)
    -> mean and max of its outputs over the real tokens -> logits for SENTIMENTS (positive, negative)."""

    def __init__(
        self, vocab_size: int, embedding_dim: int, hidden_size: int, bidirectional: bool, dropout: float
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size * (2 if bidirectional else 1), 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = ids.shape[1]
        embedded = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=steps)
        mask = (torch.arange(steps, device=ids.device)[None, :] < lengths[:, None].to(ids.device))[..., None]
        mean = (outputs * mask).sum(1) / mask.sum(1)
        peak = outputs.masked_fill(~mask, float("-inf")).max(1).values
        return self.head(self.dropout(torch.cat([mean, peak], dim=1)))


class SentimentEnsemble(Ensemble):
    """Several `SentimentLSTM` members of one shape (different seeds); their probabilities are averaged."""

    def __init__(self, members: int, *args, **kwargs):
        super().__init__(SentimentLSTM(*args, **kwargs) for _ in range(members))
