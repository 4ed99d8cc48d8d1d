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
    """Loss and accuracy by epoch: a colour for each quantity, a line style for each member (seed) of an
    ensemble; held-out figures if the run had held-out speakers."""
    figure, (losses, scores) = plt.subplots(1, 2, figsize=(12, 4.5))
    seeds = sorted({h["seed"] for h in history})
    for number, seed in enumerate(seeds):
        style = ["-", "--", ":", "-."][number % 4]
        member = [h for h in history if h["seed"] == seed]
        epochs = [h["epoch"] for h in member]
        lines = [(losses, "train_loss", "training speakers"), (scores, "train_accuracy", "training accuracy")]
        lines += [(losses, "val_loss", "held-out speakers")] if "val_loss" in member[0] else []
        lines += [
            (scores, k, f"{k[:-3]} UA, held-out speakers") for k in sorted(member[0]) if k.endswith("_ua")
        ]
        for colour, (axis, key, label) in enumerate(lines):
            values = [h[key] for h in member]
            axis.plot(epochs, values, style, color=f"C{colour}", label=f"{label}, seed {seed}")
    losses.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    scores.set(xlabel="epoch", ylabel="score", title="Accuracy", ylim=(0, 1))
    for axis in (losses, scores):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
