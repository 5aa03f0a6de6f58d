"""Test-time augmentation: the views of each face a classifier averages over.

"flip" averages each face with its mirror; "shift" also averages in copies moved TTA_SHIFT
pixels up, down, left and right (edges repeated), 10 views in all. The shift was chosen on
PublicTest (reports/experiments.md). NumPy only: the ONNX Runtime classifier uses this
without PyTorch installed.
"""

from __future__ import annotations

import numpy as np

TTA_VIEWS = {"none": 1, "flip": 2, "shift": 10}
TTA_MODES = tuple(TTA_VIEWS)
TTA_SHIFT = 2
AUGMENTED_TTA_MODES = TTA_MODES[1:]  # the modes whose accuracy runs and model cards report


def check_tta(tta: str) -> str:
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    return tta


def tta_views(faces: np.ndarray, tta: str = "none", shift: int = TTA_SHIFT) -> list[np.ndarray]:
    """The views of faces shaped (..., H, W) that ``tta`` averages over (``shift`` pixels for "shift").

    Built with NumPy, not torch, also because a torch operation between ONNX Runtime's calls
    wakes torch's thread pool, whose spinning threads then took the two cores from ONNX
    Runtime's (int8 `fast` on the 2-core EPYC: about 3,800 instead of 6,000 faces/s)."""
    check_tta(tta)
    views = [faces]
    if tta == "shift":
        padded = np.pad(faces, [(0, 0)] * (faces.ndim - 2) + [(shift, shift)] * 2, mode="edge")
        height, width = faces.shape[-2:]
        for dy, dx in ((shift, 0), (-shift, 0), (0, shift), (0, -shift)):
            views.append(padded[..., shift - dy : shift - dy + height, shift - dx : shift - dx + width])
    if tta != "none":
        views += [view[..., ::-1] for view in views]
    return views


def average_views(probabilities: np.ndarray) -> np.ndarray:
    """One face's probabilities from those of its views (V, N, 7): the soft-max of the views'
    mean log-probability, which equals the soft-max of their mean logits, the average
    `ferlab.evaluate.predict_logits` takes and so every TTA figure in a model card."""
    if len(probabilities) == 1:
        return probabilities[0]
    mean_log = np.log(np.maximum(probabilities, np.finfo(np.float32).tiny)).mean(0)
    exp = np.exp(mean_log - mean_log.max(1, keepdims=True))
    return (exp / exp.sum(1, keepdims=True)).astype(np.float32)
