"""The speech-emotion branch: a CNN over time on frame-level acoustic features.

The network reads a sequence of feature frames (50 a second) and pools over time, so any frame-level
representation of the same rate can feed it: the acoustic features of emotion.features today, Whisper's
encoder frames next.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion import settings
from emotion.errors import EmotionError
from emotion.features import extract_features
from emotion.labels import EMOTIONS

ACOUSTIC_MODEL = "acoustic"


class SpeechCNN(nn.Module):
    """Frames (batch, time, features) and their lengths -> emotion logits (batch, classes).

    Three convolution blocks over time, each halving the frame rate, then the mean and standard
    deviation of the last block over the frames that hold audio (padding is masked out).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int = len(EMOTIONS),
        channels: int = 128,
        dropout: float = 0.3,
        utterance_norm: bool = False,
    ) -> None:
        super().__init__()
        # Subtracting each clip's own mean removes what stays constant over a clip: the speaker's timbre
        # and the microphone, which an emotion model should not learn.
        self.utterance_norm = utterance_norm
        # Standardisation with the training speakers' statistics, saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        widths = [n_features, channels, channels, channels]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(width_in, width_out, kernel_size=5, padding=2), nn.BatchNorm1d(width_out), nn.ReLU()
            )
            for width_in, width_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * channels, channels), nn.ReLU(), nn.Dropout(dropout), nn.Linear(channels, n_classes)
        )

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = ((frames - self.feature_mean) / self.feature_std).transpose(1, 2)
        mask = _mask(lengths, x.shape[-1])
        if self.utterance_norm:
            x = x - (x * mask).sum(dim=-1, keepdim=True) / mask.sum(dim=-1, keepdim=True).clamp(min=1)
        for block in self.blocks:
            # Masked before pooling too, so that no pooling window reads a padded frame.
            x = self.dropout(self.pool(block(x * mask) * mask))
            lengths = (lengths + 1) // 2
            mask = _mask(lengths, x.shape[-1])
        count = mask.sum(dim=-1).clamp(min=1)
        mean = (x * mask).sum(dim=-1) / count
        variance = (((x - mean.unsqueeze(-1)) * mask) ** 2).sum(dim=-1) / count
        return self.head(torch.cat([mean, variance.clamp(min=1e-6).sqrt()], dim=-1))


def _mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    return (torch.arange(n_frames, device=lengths.device) < lengths.unsqueeze(-1)).unsqueeze(1).float()


def pad_frames(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (time, features) arrays of different lengths into a zero-padded batch and its lengths."""
    lengths = torch.tensor([len(s) for s in sequences])
    batch = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.from_numpy(np.asarray(sequence, dtype=np.float32))
    return batch, lengths


@dataclass
class SpeechEmotion:
    model: str
    label: str
    scores: dict[str, float]

    def to_json(self) -> dict:
        return {"model": self.model, "label": self.label, "scores": self.scores}


class SpeechModel:
    """A trained SpeechCNN with the feature extraction it was trained on."""

    def __init__(self, name: str, network: SpeechCNN, labels: tuple[str, ...]) -> None:
        self.name = name
        self.network = network.eval()
        self.labels = labels

    def predict(self, audios: list[np.ndarray]) -> list[SpeechEmotion]:
        """Emotions of 16 kHz mono clips, one batch through the network."""
        return self.predict_frames([extract_features(audio) for audio in audios])

    def predict_frames(self, sequences: list[np.ndarray]) -> list[SpeechEmotion]:
        frames, lengths = pad_frames(sequences)
        with torch.inference_mode():
            probabilities = torch.softmax(self.network(frames, lengths), dim=-1).numpy()
        return [self._result(row) for row in probabilities]

    def _result(self, probabilities: np.ndarray) -> SpeechEmotion:
        scores = {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}
        return SpeechEmotion(self.name, max(scores, key=scores.get), scores)


def checkpoint_path(name: str, weights_dir: Path = settings.WEIGHTS_DIR) -> Path:
    return weights_dir / f"speech_{name}.pt"


def save_speech_model(network: SpeechCNN, name: str, metadata: dict, weights_dir: Path) -> Path:
    """Write the weights (.pt) and, beside them, the metadata a person can read (.json)."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(name, weights_dir)
    config = {
        "n_features": network.blocks[0][0].in_channels,
        "n_classes": network.head[-1].out_features,
        "channels": network.head[-1].in_features,
        "utterance_norm": network.utterance_norm,
    }
    torch.save(
        {"config": config, "labels": list(metadata["labels"]), "state_dict": network.state_dict()}, path
    )
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    return path


def load_speech_model(name: str = ACOUSTIC_MODEL, weights_dir: Path = settings.WEIGHTS_DIR) -> SpeechModel:
    path = checkpoint_path(name, weights_dir)
    if not path.is_file():
        raise EmotionError(f"No speech model {name!r} at {path}. Train one with `python -m train.speech`.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    network = SpeechCNN(**checkpoint["config"])
    network.load_state_dict(checkpoint["state_dict"])
    return SpeechModel(name, network, tuple(checkpoint["labels"]))
