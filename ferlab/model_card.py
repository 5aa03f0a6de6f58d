"""Package a trained run as a shippable model: safetensors weights, a JSON card and a
Markdown card, with accuracies measured here and now on the data file named by its hash.

    ferlab package-model runs/new --data fer2013.csv --command "ferlab train ..." --name new  # ferlab/pretrained/new.*
    ferlab package-model runs/new --data fer2013.csv --command "ferlab train ..." --replace   # a new bundled default
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_text
from .data import EMOTIONS, file_sha256, load_fer2013, train_val_test
from .evaluate import torch_logits
from .hardware import machine_description
from .metrics import LogitsOf, classification_metrics, evaluate_predictions, fit_temperature, remembered
from .tta import AUGMENTED_TTA_MODES, TTA_VIEWS

# The card's speed keys and the `load_model` backends they are measured with.
ENGINE_BACKENDS = {"onnxruntime": "onnx", "torch": "torch"}
ENGINE_NAMES = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch"}


def classifier_speed(model: Path, backend: str, faces: int = 8192) -> float:
    """Faces per second through `ExpressionClassifier.predict_proba` on random 48x48 faces,
    best of 10 passes (this shared VM's speed varies; benchmarks/classifier_throughput.py)."""
    from .classifier import load_model

    batch = np.random.default_rng(0).integers(0, 256, (faces, 48, 48), dtype=np.uint8)
    return load_model(model, backend=backend).faces_per_second(batch, repeats=10)


def calibrate(logits_of: LogitsOf, data, temperature: float | None = None) -> tuple[float, dict]:
    """The soft-max temperature fitted on PublicTest (or the ``temperature`` given, one that
    an exported graph has built in), and PrivateTest's calibration error and negative
    log-likelihood with it and without it (at temperature 1)."""
    splits = train_val_test(data)
    if temperature is None:
        temperature = fit_temperature(logits_of(splits["PublicTest"][0], "none"), splits["PublicTest"][1])
    images, labels = splits["PrivateTest"]
    logits = logits_of(images, "none")
    scored = {"": classification_metrics(labels, logits / temperature),
              "_at_temperature_1": classification_metrics(labels, logits)}
    calibration = {f"PrivateTest_{measure}{suffix}": metrics[key] for suffix, metrics in scored.items()
                   for measure, key in (("calibration_error", "calibration_error"), ("nll", "loss"))}
    return round(temperature, 4), calibration


def package_model(
    run_dir: str | Path, data_path: str | Path, out_dir: str | Path, name: str, command: str, note: str = "",
    replace: bool = False,
) -> Path:
    """Evaluate the run's best weights, time the classifier, and write ``<name>.safetensors``,
    ``<name>.json`` and ``<name>.md`` into ``out_dir``, with ``<name>.onnx``, the same model
    exported for ONNX Runtime, on which ferlab runs it where PyTorch is not installed.
    Returns the JSON card's path. A model of that name already in ``out_dir`` (such as the
    bundled default, run from the repository) is replaced only with ``replace``.

    ``run_dir`` may also be an ``.onnx`` file written by ``ferlab export`` (int8 for CPUs
    without AMX): it is measured through ONNX Runtime and shipped as ``<name>.onnx``."""
    run_dir, out_dir, data_path = Path(run_dir), Path(out_dir), Path(data_path)
    if (out_dir / f"{name}.json").exists() and not replace:  # before minutes of measuring
        raise FileExistsError(f"{out_dir / name}.json: a model named {name!r} is there already; give another "
                              "--name or --out, or --replace to replace it")
    data = load_fer2013(data_path)
    if run_dir.suffix == ".onnx":
        from .classifier import card_beside, onnx_logits

        card = card_beside(run_dir)
        if "trainable_parameters" not in card:
            raise ValueError(f"{run_dir}: its card lacks the parameter count; export it from a packaged model "
                             "(a bundled name, or a .safetensors with its card)")
        weights, logits_of = run_dir, onnx_logits(run_dir)
        # The temperature came with the source card and is part of the exported graph.
        temperature, parameters = card.get("temperature", 1.0), card["trainable_parameters"]
    else:
        from .models import load_trained, trainable_parameters

        card = json.loads((run_dir / "model.json").read_text())
        model, _ = load_trained(run_dir)
        weights, logits_of, temperature = run_dir / "best.safetensors", torch_logits(model), None
        parameters = trainable_parameters(model)
    logits_of = remembered(logits_of)  # the calibration scores the splits the accuracies did
    metrics = evaluate_predictions(logits_of, data)
    card["temperature"], calibration = calibrate(logits_of, data, temperature)
    card.update({
        "name": name,
        "labels": list(EMOTIONS),
        "training_command": command,
        "data": {"file": data_path.name, "sha256": file_sha256(data_path)},
        "trainable_parameters": parameters,
        "accuracy": {
            "PublicTest": metrics["val"]["accuracy"],
            "PrivateTest": metrics["test"]["accuracy"],
            "PrivateTest_without_training_duplicates": metrics["test_deduplicated"]["accuracy"],
        },
        "accuracy_with_tta": {
            tta: {"PublicTest": metrics[f"val_{tta}_tta_accuracy"], "PrivateTest": metrics[f"test_{tta}_tta_accuracy"]}
            for tta in AUGMENTED_TTA_MODES
        },
        "recall_PrivateTest": metrics["test"]["recall"],
        "calibration": calibration,
        "measured_on": machine_description(),
        "note": note,
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped = out_dir / f"{name}{weights.suffix}"
    with atomic_write(shipped) as tmp:
        shutil.copyfile(weights, tmp)
    card_path = atomic_write_text(out_dir / f"{name}.json", json.dumps(card, indent=2))
    engines = ["onnxruntime"]
    if weights.suffix == ".safetensors":
        from .classifier import load_model

        load_model(shipped, backend="torch").export_onnx(shipped.with_suffix(".onnx"))
        engines.append("torch")
    # Timed as shipped, on each engine that runs it: ONNX Runtime is what load_model picks.
    card["faces_per_second"] = {engine: round(classifier_speed(shipped, ENGINE_BACKENDS[engine])) for engine in engines}
    atomic_write_text(card_path, json.dumps(card, indent=2))
    atomic_write_text(out_dir / f"{name}.md", markdown_card(card))
    return card_path


def markdown_card(card: dict) -> str:
    accuracy = card["accuracy"]
    options = card.get("model_options") or {}
    lines = [
        f"# Model card: `{card['name']}`", "",
        f"- Architecture: `{card['model']}`{' with ' + json.dumps(options) if options else ''} "
        f"({card['trainable_parameters']:,} trainable parameters), input 48x48 grayscale, "
        f"normalised with mean {card['input']['mean']} and std {card['input']['std']}.",
        f"- Trained by: `{card['training_command']}`; " + (
            f"the uniform average of the weights of {len(card['soup_of'])} fine-tunes, each at its best "
            "PublicTest epoch." if card.get("soup_of") else f"best epoch {card['epoch']} chosen on PublicTest."),
        f"- Data: `{card['data']['file']}`, SHA-256 `{card['data']['sha256']}`.",
        f"- Measured on: {card['measured_on']}; classifier speed "
        + ", ".join(f"{speed:,} faces/s on {ENGINE_NAMES[engine]}" for engine, speed in card["faces_per_second"].items())
        + " (batched 48x48 crops, `ExpressionClassifier.predict_proba`; ONNX Runtime is the engine `load_model` picks).",
        *([calibration_line(card)] if card.get("calibration") else []),
        *([f"- Note: {card['note']}"] if card.get("note") else []), "",
        "| split | accuracy |", "|---|---|",
        f"| PublicTest (validation) | {100 * accuracy['PublicTest']:.2f}% |",
        f"| PrivateTest (test) | {100 * accuracy['PrivateTest']:.2f}% |",
        f"| PrivateTest without faces also in Training | {100 * accuracy['PrivateTest_without_training_duplicates']:.2f}% |",
        "", "| test-time augmentation (`load_model(tta=...)`, `--tta`) | PublicTest | PrivateTest |", "|---|---|---|",
        *(f"| {tta} ({TTA_VIEWS[tta]} views) | {100 * scores['PublicTest']:.2f}% | {100 * scores['PrivateTest']:.2f}% |"
          for tta, scores in card["accuracy_with_tta"].items()),
        "", "| class | PrivateTest recall |", "|---|---|",
        *(f"| {e} | {100 * card['recall_PrivateTest'][e]:.1f}% |" for e in EMOTIONS), "",
        "Limitations: FER2013 faces are low-resolution, mostly frontal web images with noisy labels; "
        "Disgust has few examples and low recall. Expression is not emotion: treat outputs as estimates.", "",
    ]
    return "\n".join(lines)


def calibration_line(card: dict) -> str:
    calibration = card["calibration"]
    unscaled = ""
    if "PrivateTest_calibration_error_at_temperature_1" in calibration:
        unscaled = (f" (at temperature 1: {100 * calibration['PrivateTest_calibration_error_at_temperature_1']:.2f}%"
                    f" and {calibration['PrivateTest_nll_at_temperature_1']:.4f})")
    return (f"- Probabilities: soft-max at temperature {card.get('temperature', 1.0)} (fitted on PublicTest); "
            f"on PrivateTest an expected calibration error of {100 * calibration['PrivateTest_calibration_error']:.2f}% "
            f"(15 bins) and a negative log-likelihood of {calibration['PrivateTest_nll']:.4f}{unscaled}.")
