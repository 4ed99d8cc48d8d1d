"""Per-corpus scores of a speech-emotion model, and the figures of its report."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emotion.labels import EMOTIONS  # noqa: E402
from train.corpora import Clip  # noqa: E402


def corpus_metrics(clips: list[Clip], truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """Per corpus: UA (mean recall over the classes the corpus has), WA (accuracy), recalls, confusion."""
    results = {}
    for corpus in sorted({c.corpus for c in clips}):
        rows = np.array([c.corpus == corpus for c in clips])
        t, p = truth[rows], predicted[rows]
        present = sorted(set(t.tolist()))
        recall = {EMOTIONS[k]: float(np.mean(p[t == k] == k)) for k in present}
        confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=int)
        np.add.at(confusion, (t, p), 1)
        results[corpus] = {
            "ua": float(np.mean(list(recall.values()))),
            "wa": float(np.mean(t == p)),
            "clips": int(rows.sum()),
            "recall": recall,
            "confusion": confusion.tolist(),
        }
    return results


def plot_confusions(clips: list[Clip], truth: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    metrics = corpus_metrics(clips, truth, predicted)
    figure, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 5.5), squeeze=False)
    for axis, (corpus, m) in zip(axes[0], metrics.items(), strict=True):
        confusion = np.array(m["confusion"], dtype=float)
        present = [i for i in range(len(EMOTIONS)) if confusion[i].sum() > 0]
        shown = confusion[present] / confusion[present].sum(axis=1, keepdims=True)
        axis.imshow(shown, cmap="Blues", vmin=0, vmax=1)
        for (row, column), value in np.ndenumerate(shown):
            axis.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
        axis.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
        axis.set_yticks(range(len(present)), [EMOTIONS[i] for i in present])
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{corpus}: UA {m['ua']:.1%}, WA {m['wa']:.1%} (held-out speakers)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy by epoch, one line per member (seed) of an ensemble; held-out figures if any."""
    figure, (losses, scores) = plt.subplots(1, 2, figsize=(12, 4.5))
    for seed in sorted({h["seed"] for h in history}):
        member = [h for h in history if h["seed"] == seed]
        epochs = [h["epoch"] for h in member]
        losses.plot(epochs, [h["train_loss"] for h in member], label=f"seed {seed}, training speakers")
        scores.plot(epochs, [h["train_accuracy"] for h in member], label=f"seed {seed}, training accuracy")
        if "val_loss" in member[0]:
            losses.plot(epochs, [h["val_loss"] for h in member], label=f"seed {seed}, held-out speakers")
        for key in sorted(k for k in member[0] if k.endswith("_ua")):
            scores.plot(
                epochs, [h[key] for h in member], label=f"seed {seed}, {key[:-3]} UA, held-out speakers"
            )
    losses.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    scores.set(xlabel="epoch", ylabel="score", title="Accuracy", ylim=(0, 1))
    for axis in (losses, scores):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
