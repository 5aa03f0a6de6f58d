"""Is model A more accurate than model B, or is the gap chance? A paired test on FER2013.

Both models label the same PublicTest and PrivateTest faces, with each test-time
augmentation. Only the faces that exactly one of them gets right tell the two apart:
McNemar's exact test (`ferlab.metrics.paired_comparison`) gives the probability of a split of
those faces at least that lopsided if both were equally accurate. Choose on PublicTest;
PrivateTest is shown, not used. One TTA mode at a time, as JSON: ``ferlab evaluate A --compare B``.

    python benchmarks/compare_models.py runs/NEW default --data ../shared/data/fer2013.csv.gz
"""

from __future__ import annotations

import argparse

from ferlab.classifier import BACKENDS, load_model
from ferlab.data import load_fer2013
from ferlab.hardware import machine_description
from ferlab.metrics import compare_on_fer2013
from ferlab.tta import TTA_VIEWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_a", help="bundled name, run folder, .safetensors or .onnx")
    parser.add_argument("model_b")
    parser.add_argument("--data", required=True)
    parser.add_argument("--tta", nargs="+", default=list(TTA_VIEWS), choices=list(TTA_VIEWS))
    parser.add_argument("--backend", default="torch", choices=BACKENDS,
                        help="torch (default): the engine the model cards were measured with")
    args = parser.parse_args()
    data = load_fer2013(args.data)
    print(f"{machine_description()}; A = {args.model_a}, B = {args.model_b}, backend {args.backend}")
    print("| TTA | split | A | B | only A right | only B right | McNemar p |")
    print("|---|---|---|---|---|---|---|")
    for tta in args.tta:
        model_a, model_b = (load_model(name, tta=tta, backend=args.backend) for name in (args.model_a, args.model_b))
        for split, result in compare_on_fer2013(model_a.predict, model_b.predict, data).items():
            if split != "PrivateTest_deduplicated":
                print(f"| {tta} | {split} | {result['accuracy_a']:.2%} | {result['accuracy_b']:.2%} "
                      f"| {result['only_a_right']} | {result['only_b_right']} | {result['p_value']:.3f} |")


if __name__ == "__main__":
    main()
