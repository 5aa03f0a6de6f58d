"""Batched inference on uint8 faces and the metrics the paper reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import EMOTIONS, FER2013, PIXEL_MEAN, PIXEL_STD, train_val_test, training_duplicates_mask
from .models import load_trained
from .tta import AUGMENTED_TTA_MODES, TTA_SHIFT, tta_views

# The paper's suggested regroupings (Section 5): attitude, and anger merged with disgust.
ATTITUDE = {"positive": (3,), "negative": (0, 1, 2, 4), "neutral": (5, 6)}
ATTITUDE_OF_LABEL = np.array([next(i for i, g in enumerate(ATTITUDE.values()) if c in g) for c in range(7)])
MERGE_ANGER_DISGUST = np.array([0, 0, 1, 2, 3, 4, 5])


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


def calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): how far the top label's probability is
    from how often that label is right, averaged over ``bins`` equal-width bins of that
    probability, weighted by their share of faces. 0 is perfectly calibrated."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if not len(labels):
        return 0.0
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # bin i holds (i/bins, (i+1)/bins]
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
            for b in range(bins) if (which == b).any()]
    return float(sum(gaps))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The soft-max temperature that makes ``logits`` (or log-probabilities) most likely for
    ``labels`` (temperature scaling, Guo et al. 2017): fitted on PublicTest, it calibrates the
    probabilities without changing any prediction."""
    from scipy.optimize import minimize_scalar

    logits, labels = torch.as_tensor(np.asarray(logits, dtype=np.float64)), torch.as_tensor(np.asarray(labels))

    def nll(temperature: float) -> float:
        return float(nn.functional.cross_entropy(logits / temperature, labels))

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict:
    """Accuracy, loss, calibration, per-class recall, confusion matrices and the paper's regroupings."""
    labels = np.asarray(labels)
    predicted = logits.argmax(1)
    log_probs = torch.log_softmax(torch.as_tensor(logits), 1)
    loss = float(nn.functional.nll_loss(log_probs, torch.as_tensor(labels)).item()) if len(labels) else 0.0
    confusion = np.zeros((7, 7), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    row_sums = confusion.sum(1, keepdims=True)
    normalized = np.divide(confusion, row_sums, out=np.zeros((7, 7)), where=row_sums > 0)
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "loss": loss,
        "calibration_error": calibration_error(labels, log_probs.exp().numpy()),
        "recall": {EMOTIONS[c]: float(normalized[c, c]) for c in range(7)},
        "confusion": confusion.tolist(),
        "confusion_normalized": normalized.round(4).tolist(),
        "true_counts": np.bincount(labels, minlength=7).tolist(),
        "predicted_counts": np.bincount(predicted, minlength=7).tolist(),
        "attitude_accuracy": float((ATTITUDE_OF_LABEL[predicted] == ATTITUDE_OF_LABEL[labels]).mean()),
        "anger_disgust_merged_accuracy": float(
            (MERGE_ANGER_DISGUST[predicted] == MERGE_ANGER_DISGUST[labels]).mean()
        ),
    }


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
        "best_epoch": card["epoch"],
        **training,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **evaluate_predictions(lambda images, tta: predict_logits(model, images, tta=tta), data),
    }


def evaluate_predictions(logits_of: Callable[[np.ndarray, str], np.ndarray], data: FER2013) -> dict:
    """The test-split metrics of `evaluate_trained` for any classifier: ``logits_of(faces, tta)``
    gives logits (or log-probabilities) (N, 7) for uint8 faces (N, 48, 48)."""
    splits = train_val_test(data)
    val_images, val_labels = splits["PublicTest"]
    test_images, test_labels = splits["PrivateTest"]
    test_logits = logits_of(test_images, "none")
    unseen = ~training_duplicates_mask(data, "PrivateTest") if len(test_labels) else np.zeros(0, bool)
    return {
        "val": classification_metrics(val_labels, logits_of(val_images, "none")),
        "test": classification_metrics(test_labels, test_logits),
        "test_deduplicated": classification_metrics(test_labels[unseen], test_logits[unseen]),
        **{
            f"{split}_{tta}_tta_accuracy": _accuracy(labels, logits_of(images, tta))
            for tta in AUGMENTED_TTA_MODES
            for split, images, labels in (("val", val_images, val_labels), ("test", test_images, test_labels))
        },
        "test_predicted": test_logits.argmax(1).tolist(),
    }


def _accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


def evaluate_ensemble(model_dirs: list[str | Path], data: FER2013, tta: str = "none") -> dict:
    """Accuracy of the mean soft-max of several trained runs, on PublicTest and PrivateTest
    (and PrivateTest without the faces that also appear in Training)."""
    splits = train_val_test(data)
    models = [load_trained(d)[0] for d in model_dirs]
    result = {"models": [str(d) for d in model_dirs], "tta": tta}
    for name, key in (("PublicTest", "val_accuracy"), ("PrivateTest", "test_accuracy")):
        images, labels = splits[name]
        mean_probs = sum(
            torch.softmax(torch.from_numpy(predict_logits(model, images, tta=tta)), 1) for model in models
        ) / len(models)
        result[key] = _accuracy(labels, mean_probs.numpy())
        if name == "PrivateTest" and len(labels):
            unseen = ~training_duplicates_mask(data, "PrivateTest")
            result["test_deduplicated_accuracy"] = _accuracy(labels[unseen], mean_probs.numpy()[unseen])
    return result
