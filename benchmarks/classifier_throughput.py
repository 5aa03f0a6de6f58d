"""Classifier throughput on batched 48x48 faces: PyTorch (ferlab's path) and ONNX Runtime (fp32, int8).

    python benchmarks/classifier_throughput.py [--model PATH] [--faces 8192] [--batch-size 64] [--tta shift]

An ensemble (``--model default+fast``) is timed on PyTorch and on its members' ONNX twins, as
``load_model`` runs it; there is no int8 form of an ensemble.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ferlab.classifier import DEFAULT_BATCH_SIZE, EnsembleClassifier, load_model
from ferlab.hardware import machine_description
from ferlab.tta import TTA_MODES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation")
    parser.add_argument("--faces", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    faces = np.random.default_rng(0).integers(0, 256, (args.faces, 48, 48), dtype=np.uint8)
    model = load_model(args.model, tta=args.tta, backend="torch")
    model.batch_size = args.batch_size
    print(f"machine: {machine_description()}; model {describe(model)}, tta {args.tta}")
    print(f"PyTorch (bf16 where native, channels_last): {model.faces_per_second(faces, args.repeats):8.0f} faces/s")
    if isinstance(model, EnsembleClassifier):
        del model
        onnx = load_model(args.model, tta=args.tta, backend="onnx")
        onnx.batch_size = args.batch_size
        print(f"{'ONNX Runtime (fp32 twins):':44s}{onnx.faces_per_second(faces, args.repeats):8.0f} faces/s")
        return
    with tempfile.TemporaryDirectory() as tmp:
        exported = {
            "fp32": model.export_onnx(Path(tmp) / "model.onnx"),
            # Speed only: int8 ranges set on random faces (`ferlab export --int8` uses Training faces).
            "int8": model.export_onnx(Path(tmp) / "int8.onnx", calibration_faces=faces[:512]),
        }
        del model  # each backend timed alone, as a program using one of them runs
        for precision, path in exported.items():
            onnx = load_model(path, tta=args.tta)
            onnx.batch_size = args.batch_size
            label = f"ONNX Runtime ({precision}):"
            print(f"{label:44s}{onnx.faces_per_second(faces, args.repeats):8.0f} faces/s")
            del onnx


def describe(model) -> str:
    cards = model.card["members"] if isinstance(model, EnsembleClassifier) else [model.card]
    return " + ".join(f"{card['model']} {card.get('model_options', {})}" for card in cards)


if __name__ == "__main__":
    main()
