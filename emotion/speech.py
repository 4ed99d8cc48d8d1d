"""The speech-emotion branch: a CNN over time on frame-level acoustic features, and Whisper's encoder frames.

The network reads a sequence of frames (50 a second) and pools over time. Each frame holds the acoustic
features of emotion.features and, for the default model, the frame the transcriber's Whisper encoder computed
for the same 20 ms: the speech model listens through the transcriber's own encoder, loaded once for both jobs.
The default model also holds a layer probe: a logistic regression on the mean and standard deviation of every
encoder layer's frames, whose probabilities are averaged with the CNN's.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion import settings
from emotion.asr import FRAME_LAYER, PACKAGED_MODEL, Transcriber, load_transcriber
from emotion.ensemble import Ensemble
from emotion.errors import EmotionError
from emotion.features import extract_features
from emotion.labels import EMOTIONS

ACOUSTIC_MODEL = "acoustic"
WHISPER_MODEL = "whisper"
# What each model listens to, in a few words for the page.
DESCRIPTIONS = {
    WHISPER_MODEL: "acoustic features + Whisper-base encoder frames, and a probe of every encoder layer",
    ACOUSTIC_MODEL: "acoustic features only",
}
# The transcriber whose encoder frames the "whisper" model reads (load_transcriber's arguments), and the
# encoder block the CNN reads.
ENCODER = {"engine": "faster-whisper", "model": PACKAGED_MODEL, "layer": FRAME_LAYER}


class SpeechCNN(nn.Module):
    """Frames (batch, time, features) and their lengths -> emotion logits (batch, classes).

    A frame is `n_features` acoustic numbers, then `encoder_dims` encoder numbers (none for the acoustic-only
    model). The encoder's part is first projected to `channels` per frame, a tower of one layer, so that the
    convolutions see a balance of the two. Three convolution blocks over time, each halving the frame rate,
    then the mean and standard deviation of the last block over the frames that hold audio (padding masked).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int = len(EMOTIONS),
        channels: int = 128,
        dropout: float = 0.3,
        utterance_norm: bool = False,
        encoder_dims: int = 0,
        utterance_std: bool = False,
        attention_pooling: bool = False,
    ) -> None:
        super().__init__()
        self.config = {
            "n_features": n_features,
            "n_classes": n_classes,
            "channels": channels,
            "utterance_norm": utterance_norm,
            "encoder_dims": encoder_dims,
            "utterance_std": utterance_std,
            "attention_pooling": attention_pooling,
        }
        self.n_features, self.encoder_dims = n_features, encoder_dims
        # Subtracting each clip's own mean of the acoustic features removes what stays constant over a clip:
        # the speaker's timbre and the microphone, which an emotion model should not learn. Dividing by the
        # clip's own standard deviation too (utterance_std) removes how widely the recording spreads them
        # (RAVDESS clips spread RMS and mel about 2.5 times as wide as CREMA-D's): measured, it is what
        # carries the model to a corpus it never heard (docs/speech.md).
        self.utterance_norm, self.utterance_std = utterance_norm, utterance_std
        # Standardisation with the training speakers' statistics, saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(n_features + encoder_dims))
        self.register_buffer("feature_std", torch.ones(n_features + encoder_dims))
        self.encoder_projection = (
            nn.Sequential(
                nn.Conv1d(encoder_dims, channels, kernel_size=1), nn.BatchNorm1d(channels), nn.ReLU()
            )
            if encoder_dims
            else None
        )
        widths = [n_features + (channels if encoder_dims else 0), channels, channels, channels]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(width_in, width_out, kernel_size=5, padding=2), nn.BatchNorm1d(width_out), nn.ReLU()
            )
            for width_in, width_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        # Attentive statistics pooling (Okabe et al., 2018): each channel weighs its frames by learned scores.
        self.attention = (
            nn.Sequential(nn.Conv1d(channels, 64, 1), nn.Tanh(), nn.Conv1d(64, channels, 1))
            if attention_pooling
            else None
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * channels, channels), nn.ReLU(), nn.Dropout(dropout), nn.Linear(channels, n_classes)
        )

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = ((frames - self.feature_mean) / self.feature_std).transpose(1, 2)
        mask = frame_mask(lengths, x.shape[-1])
        x = x * mask
        acoustic, encoded = x[:, : self.n_features], x[:, self.n_features :]
        if self.utterance_norm:
            acoustic = normalise_clip(acoustic, mask, self.utterance_std)
        parts = [acoustic]
        if self.encoder_projection is not None:
            parts.append(self.dropout(self.encoder_projection(encoded)))
        x = torch.cat(parts, dim=1)
        for block in self.blocks:
            # Masked before pooling too, so that no pooling window reads a padded frame.
            x = self.dropout(self.pool(block(x * mask) * mask))
            lengths = (lengths + 1) // 2
            mask = frame_mask(lengths, x.shape[-1])
        # Statistics in float32 even when training runs under bfloat16 autocast.
        x = x.float()
        weights = mask
        if self.attention is not None:
            weights = self.attention(x).float().masked_fill(mask == 0, float("-inf")).softmax(dim=-1)
        return self.head(mean_and_std(x, weights))


def frame_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(batch, 1, n_frames): 1 where a frame holds audio, 0 where it pads."""
    return (torch.arange(n_frames, device=lengths.device) < lengths.unsqueeze(-1)).unsqueeze(1).float()


def normalise_clip(x: torch.Tensor, mask: torch.Tensor, scale: bool) -> torch.Tensor:
    """(batch, channels, time): each channel less its mean over the frames `mask` keeps and, with `scale`,
    divided by its standard deviation over them too. Padding stays 0."""
    count = mask.sum(dim=-1, keepdim=True).clamp(min=1)
    x = (x - (x * mask).sum(dim=-1, keepdim=True) / count) * mask
    if scale:
        x = x / (x.square().sum(dim=-1, keepdim=True) / count + 1e-5).sqrt()
    return x


def mean_and_std(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(batch, channels, time) -> (batch, 2 * channels): each channel's weighted mean and standard deviation
    over time. `weights`: the padding mask (every real frame counts once) or any non-negative frame weights,
    such as attention's; they are normalised here."""
    total = weights.sum(dim=-1).clamp(min=1e-6)
    mean = (x * weights).sum(dim=-1) / total
    variance = ((x - mean.unsqueeze(-1)) ** 2 * weights).sum(dim=-1) / total
    return torch.cat([mean, variance.clamp(min=1e-6).sqrt()], dim=-1)


def pad_frames(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (time, features) arrays of different lengths into a zero-padded batch and its lengths."""
    lengths = torch.tensor([len(s) for s in sequences])
    batch = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.from_numpy(np.asarray(sequence, dtype=np.float32))
    return batch, lengths


def stack_frames(acoustic: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """Acoustic features and encoder frames side by side, frame t of each centred on sample 320 t.

    The two differ in length by a frame or so at the end (and the encoder pads clips under a second), so
    the longer one is cut to the shorter.
    """
    count = min(len(acoustic), len(encoded))
    return np.concatenate([acoustic[:count], encoded[:count].astype(np.float32)], axis=1)


def layer_index(layer: int | str) -> int:
    """Where encoder block `layer` (1-based, or "last": the normalised last layer) lies among a frame's."""
    return -1 if layer == "last" else layer - 1


def layer_statistics(encoded: np.ndarray) -> np.ndarray:
    """(frames, layers, dims) encoder frames -> each layer's mean and standard deviation over the frames,
    (layers * 2 * dims,): what the layer probe reads."""
    encoded = np.asarray(encoded, dtype=np.float32)
    return np.concatenate([encoded.mean(axis=0), encoded.std(axis=0)], axis=1).reshape(-1)


@dataclass
class LayerProbe:
    """A logistic regression on layer_statistics (the issue's linear probe, on every layer at once). Its
    probabilities take `share` of the speech answer, the CNN ensemble's the rest. On the held-out speakers the
    probe alone reads UA 70.7 / 72.7 (CREMA-D / RAVDESS), the CNN 69.6 / 67.2, the two averaged 71.7 / 73.4:
    they err on different clips (docs/speech.md)."""

    mean: np.ndarray  # the training clips' statistics' mean and standard deviation, for standardising
    std: np.ndarray
    coef: np.ndarray  # (classes it was trained on, statistics)
    intercept: np.ndarray
    classes: np.ndarray  # each row's index in the model's labels
    share: float

    def probabilities(self, statistics: np.ndarray, n_labels: int) -> np.ndarray:
        """(clips, statistics) -> its (clips, n_labels) probabilities; 0 for a label it was not trained on."""
        logits = ((statistics - self.mean) / self.std) @ self.coef.T + self.intercept
        exponents = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = np.zeros((len(statistics), n_labels), dtype=np.float32)
        probabilities[:, self.classes] = exponents / exponents.sum(axis=1, keepdims=True)
        return probabilities

    def blend(self, probabilities: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        """(clips, labels) probabilities averaged with the regression's, `share` to it."""
        own = self.probabilities(statistics, probabilities.shape[1])
        return (1 - self.share) * probabilities + self.share * own

    def to_state(self) -> dict:
        arrays = {name: torch.from_numpy(value) for name, value in vars(self).items() if name != "share"}
        return arrays | {"share": self.share}

    @classmethod
    def from_state(cls, state: dict) -> "LayerProbe":
        arrays = {name: value.numpy() if torch.is_tensor(value) else value for name, value in state.items()}
        return cls(**arrays)


@dataclass
class SpeechInput:
    """What the speech model reads of a clip: the CNN's frames, and the layer probe's statistics (or None)."""

    frames: np.ndarray
    statistics: np.ndarray | None = None


@dataclass
class SpeechEmotion:
    model: str
    label: str
    scores: dict[str, float]

    def to_json(self) -> dict:
        return {"model": self.model, "label": self.label, "scores": self.scores}


class SpeechModel:
    """Trained SpeechCNNs (an ensemble of one or more seeds) with the inputs they were trained on: the
    acoustic features, and the frames of the Whisper encoder (`encoder`, the shared transcriber) when the
    networks read them, block `layer`'s; and the layer probe averaged with them, if any."""

    def __init__(
        self,
        name: str,
        network: Ensemble,
        labels: tuple[str, ...],
        encoder: Transcriber | None = None,
        layer: int | str = FRAME_LAYER,
        probe: LayerProbe | None = None,
    ) -> None:
        self.name = name
        self.network = network.eval()
        self.labels = labels
        self.encoder = encoder
        self.layer = layer
        self.probe = probe
        encoder_dims = network.members[0].encoder_dims
        if encoder_dims and (encoder is None or encoder.dims != encoder_dims):
            raise EmotionError(f"The speech model {name!r} needs a Whisper encoder of {encoder_dims} dims.")

    def inputs(self, audio: np.ndarray, encoded: np.ndarray | None = None) -> SpeechInput:
        """What the model reads of a clip. `encoded`: the clip's encoder frames (every layer's), if the
        transcriber has already computed them; otherwise they are computed here when the model reads them."""
        acoustic = extract_features(audio)
        if self.encoder is None:
            return SpeechInput(acoustic)
        if encoded is None:
            encoded = self.encoder.encode(audio)
        frames = stack_frames(acoustic, encoded[:, layer_index(self.layer)])
        return SpeechInput(frames, None if self.probe is None else layer_statistics(encoded))

    def predict(self, audios: list[np.ndarray]) -> list[SpeechEmotion]:
        """Emotions of 16 kHz mono clips, one batch through the network."""
        return self.predict_inputs([self.inputs(audio) for audio in audios])

    def predict_inputs(self, inputs: list[SpeechInput]) -> list[SpeechEmotion]:
        frames, lengths = pad_frames([item.frames for item in inputs])
        with torch.inference_mode():
            probabilities = torch.softmax(self.network(frames, lengths), dim=-1).numpy()
        if self.probe is not None:
            probabilities = self.probe.blend(probabilities, np.stack([item.statistics for item in inputs]))
        return [self._result(row) for row in probabilities]

    def _result(self, probabilities: np.ndarray) -> SpeechEmotion:
        scores = {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}
        return SpeechEmotion(self.name, max(scores, key=scores.get), scores)


def checkpoint_path(name: str, weights_dir: Path = settings.WEIGHTS_DIR) -> Path:
    return weights_dir / f"speech_{name}.pt"


def save_speech_model(
    network: Ensemble,
    name: str,
    metadata: dict,
    weights_dir: Path,
    encoder: dict | None = None,
    probe: LayerProbe | None = None,
) -> Path:
    """Write the weights of an ensemble of SpeechCNNs and its layer probe, if any (.pt) and, beside them, the
    metadata a person can read (.json).

    `encoder` names the transcriber whose frames the network reads and their block: ENCODER.
    """
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(name, weights_dir)
    checkpoint = {
        "config": network.members[0].config,
        "members": len(network.members),
        "labels": list(metadata["labels"]),
        "encoder": encoder,
        "state_dict": network.state_dict(),
        "layer_probe": None if probe is None else probe.to_state(),
    }
    torch.save(checkpoint, path)
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    return path


def load_speech_model(
    name: str = settings.SPEECH_MODEL, weights_dir: Path = settings.WEIGHTS_DIR
) -> SpeechModel:
    """The speech model `name` from weights/, with the transcriber it listens through loaded (once) if any."""
    path = checkpoint_path(name, weights_dir)
    if not path.is_file():
        raise EmotionError(f"No speech model {name!r} at {path}. Train one with `python -m train.speech`.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    network = Ensemble(SpeechCNN(**checkpoint["config"]) for _ in range(checkpoint["members"]))
    network.load_state_dict(checkpoint["state_dict"])
    encoder, layer = None, FRAME_LAYER
    if spec := checkpoint.get("encoder"):
        # Weights from before the frames came from an intermediate block name none: they read the last layer.
        encoder, layer = load_transcriber(spec["engine"], spec["model"]), spec.get("layer", "last")
        if layer != "last" and layer > encoder.blocks:
            raise EmotionError(
                f"The speech model {name!r} ({path}) was trained on encoder block {layer}'s frames; the "
                f"transcriber's encoder has {encoder.blocks} blocks. Retrain it: python -m train.speech"
            )
    probe = LayerProbe.from_state(state) if (state := checkpoint.get("layer_probe")) else None
    return SpeechModel(name, network, tuple(checkpoint["labels"]), encoder, layer, probe)
