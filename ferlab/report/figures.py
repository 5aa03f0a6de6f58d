"""The paper's figures, each a function that writes one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_write  # noqa: E402
from ..data import EMOTIONS  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:  # matplotlib takes the format from the suffix, which tmp keeps
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def example_faces(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 4, seed: int = 0) -> Path:
    """Fig. 1: a few training faces of each expression, one column per class."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(per_class, 7, figsize=(9, 1.35 * per_class + 0.4), squeeze=False)
    for c, name in enumerate(EMOTIONS):
        rows = np.flatnonzero(labels == c)
        picks = rng.choice(rows, size=min(per_class, len(rows)), replace=False) if len(rows) else []
        for r in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if r < len(picks):
                ax.imshow(images[picks[r]], cmap="gray", vmin=0, vmax=255)
        axes[0, c].set_title(name, fontsize=9)
    return save_figure(fig, path)


def curves(histories: dict[str, list[dict]], metric: str, path: Path) -> Path:
    """Fig. 3 (``accuracy``) and Fig. 4 (``loss``): train and validation per epoch, per model."""
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.2), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        epochs = [row["epoch"] for row in history]
        ax.plot(epochs, [row[f"train_{metric}"] for row in history], label="train")
        ax.plot(epochs, [row[f"val_{metric}"] for row in history], label="validation (PublicTest)")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def label_distribution(true_counts: list[int], predicted_counts: list[int], path: Path) -> Path:
    """Fig. 5: how many test faces carry each label, and how many the model predicts."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(7)
    ax.bar(x - 0.2, true_counts, 0.4, label="true")
    ax.bar(x + 0.2, predicted_counts, 0.4, label="predicted")
    ax.set_xticks(x, EMOTIONS)
    ax.set_ylabel("PrivateTest faces")
    ax.legend()
    return save_figure(fig, path)


def confusion_matrix(normalized: list[list[float]], path: Path) -> Path:
    """Fig. 6: confusion matrix normalised by true label (rows sum to one)."""
    matrix = np.asarray(normalized)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for t in range(7):
        for p in range(7):
            ax.text(p, t, f"{matrix[t, p]:.2f}", ha="center", va="center",
                    color="white" if matrix[t, p] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(7), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(7), EMOTIONS)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def confusion_examples(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: Path, seed: int = 0) -> Path:
    """Fig. 7: one face for each (true, predicted) pair; a blank cell means no such face."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(7, 7, figsize=(8, 8.4))
    for t in range(7):
        for p in range(7):
            ax = axes[t, p]
            ax.set_xticks([])
            ax.set_yticks([])
            rows = np.flatnonzero((labels == t) & (predicted == p))
            if len(rows):
                ax.imshow(images[rng.choice(rows)], cmap="gray", vmin=0, vmax=255)
            for side in ax.spines.values():
                side.set_color("green" if t == p else "lightgray")
            if p == 0:
                ax.set_ylabel(EMOTIONS[t], fontsize=8)
            if t == 6:
                ax.set_xlabel(EMOTIONS[p], fontsize=8)
    fig.supxlabel("Predicted label")
    fig.supylabel("True label")
    return save_figure(fig, path)
