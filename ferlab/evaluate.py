"""Batched PyTorch inference on uint8 faces, and the metrics of trained PyTorch models
(computed by `ferlab.metrics`)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import atomic_write_text
from .data import FER2013, PIXEL_MEAN, PIXEL_STD
from .metrics import LogitsOf, evaluate_predictions
from .models import load_trained, trainable_parameters
from .tta import TTA_SHIFT, tta_views


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bf16_is_native() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 bf16 or AMX); elsewhere bf16 is emulated and slow."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast where the hardware runs it natively (CUDA, or CPUs with AVX-512 bf16)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16" or bf16_is_native():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, 48, 48) or (N, 1, 48, 48) faces to normalised float NCHW, channels_last."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    x = images.to(device, non_blocking=True).float().div_(255).sub_(PIXEL_MEAN).div_(PIXEL_STD)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 512,
    device: torch.device | None = None,
    precision: str = "auto",
    tta: str = "none",
    tta_shift: int = TTA_SHIFT,
) -> np.ndarray:
    """Logits (N, 7) as float32 for uint8 faces (N, 48, 48), averaged over the ``tta`` views."""
    device = device or next(model.parameters()).device
    images = np.asarray(images)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        views = [to_input(torch.from_numpy(np.ascontiguousarray(view)), device)
                 for view in tta_views(images[start : start + batch_size], tta, tta_shift)]
        with autocast(device, precision):
            logits = sum(model(view).float() for view in views) / len(views)
        out.append(logits.cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 7), np.float32)


def evaluate_trained(model_dir: str | Path, data: FER2013) -> dict:
    """Metrics of a trained model on PublicTest and PrivateTest (full and without the
    PrivateTest faces that also appear in Training), plus its size.

    ``model_dir`` is a run folder (its best weights; training speed from its history) or a
    ``.safetensors`` file with its card beside it, such as a bundled model."""
    model_dir = Path(model_dir)
    model, card = load_trained(model_dir)
    history_path = model_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    training = {
        "epochs": len(history),
        # Medians: robust to an epoch slowed by other work on the machine.
        "seconds_per_epoch": float(np.median([row["seconds"] for row in history])),
        "train_images_per_second": float(np.median([row["images_per_second"] for row in history])),
    } if history else {}
    return {
        "model": card["model"],
        "engine": "torch",
        "best_epoch": card["epoch"],
        **training,
        "trainable_parameters": trainable_parameters(model),
        **evaluate_predictions(torch_logits(model), data),
    }


def write_metrics(run_dir: str | Path, data: FER2013) -> dict:
    """`evaluate_trained` of a run folder, kept beside its weights as metrics.json."""
    metrics = evaluate_trained(run_dir, data)
    atomic_write_text(Path(run_dir) / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def torch_logits(model: nn.Module) -> LogitsOf:
    """``model``'s `predict_logits` as the ``logits_of(faces, tta)`` function `ferlab.metrics` takes."""
    return lambda faces, tta: predict_logits(model, faces, tta=tta)


def trained_logits(path: str | Path) -> LogitsOf:
    """A trained model (run folder, or ``.safetensors`` with its card) as ``logits_of``, at its
    card's temperature (1 for a run folder): an ensemble of them then averages each member's
    probabilities as its `predict_proba` gives them, as `ferlab.classifier.EnsembleClassifier` does."""
    model, card = load_trained(path)
    logits_of, temperature = torch_logits(model), card.get("temperature", 1.0)
    return lambda faces, tta: logits_of(faces, tta) / temperature
