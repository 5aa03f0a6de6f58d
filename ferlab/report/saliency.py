"""Figures of occlusion maps (`ferlab.explain`), each a function that writes one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import EMOTIONS
from .figures import plt, save_figure

OVERLAY = {"cmap": "RdBu_r", "alpha": 0.55, "interpolation": "bilinear"}  # red: for the class, blue: against


def _overlay(ax, face: np.ndarray, saliency: np.ndarray, limit: float, title: str):
    ax.imshow(face, cmap="gray", vmin=0, vmax=255)
    image = ax.imshow(saliency, vmin=-limit, vmax=limit, **OVERLAY)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return image


def face_explanations(faces: np.ndarray, probabilities: np.ndarray, maps: np.ndarray, path: Path,
                      names: list[str], units: str) -> Path:
    """One row per face: the 48x48 crop the model saw, the maps of its two most probable
    classes over it (red: hiding this part lowers the class's score; blue: raises it), and
    its seven probabilities."""
    # Columns: crop, two maps, their colour bar, a gap for its labels, the probabilities.
    fig, axes = plt.subplots(len(faces), 6, figsize=(10, 2.3 * len(faces)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1, 0.06, 0.45, 1.5]})
    for row, (face, probs, face_maps) in enumerate(zip(faces, probabilities, maps, strict=True)):
        first, second = np.argsort(-probs)[:2]
        limit = max(float(np.abs(face_maps[[first, second]]).max()), 1e-6)
        axes[row, 0].imshow(face, cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_title(names[row], fontsize=8)
        axes[row, 0].axis("off")
        for col, c in ((1, first), (2, second)):
            image = _overlay(axes[row, col], face, face_maps[c], limit, f"{EMOTIONS[c]} {probs[c]:.0%}")
        colorbar = fig.colorbar(image, cax=axes[row, 3])
        colorbar.set_label(f"{units.replace('_', '-')} lost when hidden", fontsize=7)
        colorbar.ax.tick_params(labelsize=7)
        axes[row, 4].axis("off")
        bars = axes[row, 5]
        bars.barh(range(7), probs, color=["tab:red" if c == first else "tab:gray" for c in range(7)])
        bars.set_yticks(range(7), EMOTIONS, fontsize=8)
        bars.invert_yaxis()
        bars.set_xlim(0, 1)
        bars.yaxis.tick_right()
        bars.tick_params(axis="x", labelsize=7)
    return save_figure(fig, path)


def saliency_by_class(mean_faces: np.ndarray, mean_maps: np.ndarray, counts: np.ndarray, path: Path, units: str) -> Path:
    """Per expression, the mean face of the faces the model got right and, below it, their mean
    map for that expression over it: which parts of a face each label rests on. Each map has
    its own colour scale (its largest value is under it): classes differ in how much any one
    part moves their odds, and a shared scale would show only the largest."""
    fig, axes = plt.subplots(2, 7, figsize=(12, 4.3))
    for c, name in enumerate(EMOTIONS):
        axes[0, c].imshow(mean_faces[c], cmap="gray", vmin=0, vmax=255)
        axes[0, c].set_title(f"{name} (n={counts[c]})", fontsize=9)
        axes[0, c].axis("off")
        limit = max(float(np.abs(mean_maps[c]).max()), 1e-6)
        _overlay(axes[1, c], mean_faces[c], mean_maps[c], limit, "")
        axes[1, c].set_title(f"largest {limit:.2f}", fontsize=8, y=-0.16)
    fig.suptitle(f"Mean map of each expression ({units.replace('_', '-')} lost when a part is hidden; "
                 "red: lowers the label, blue: raises it)", fontsize=9)
    return save_figure(fig, path)


def deletion_curves(curve: dict, path: Path) -> Path:
    """Accuracy as more pixels are hidden, in the order of each face's map and of the two
    rankings that know nothing of the face (`ferlab.explain.deletion_curve`)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    fractions = 100 * np.asarray(curve["fractions"])
    for key, label in (("salient", "the face's own map"), ("another_face", "another face's map"),
                       ("random_patches", "random patches")):
        area = 100 * curve[f"area_{key}"]
        ax.plot(fractions, 100 * np.asarray(curve[key]), marker="o", label=f"{label} (area {area:.1f})")
    ax.set_xlabel("pixels hidden (%)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
