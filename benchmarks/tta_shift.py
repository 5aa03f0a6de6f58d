"""How far "shift" test-time augmentation should move each face: accuracy of a trained run
averaged over the face, its copies moved S pixels up/down/left/right and their mirror
images (10 views), for S = 1..4, beside the mirror alone. Choose S on PublicTest.

    python benchmarks/tta_shift.py runs/fast3-long --data ../shared/data/fer2013.csv.gz
"""

from __future__ import annotations

import argparse

import torch

from ferlab.data import load_fer2013, train_val_test
from ferlab.evaluate import predict_logits
from ferlab.models import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", required=True)
    parser.add_argument("--shifts", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    model, _ = load_trained(args.run_dir)
    splits = train_val_test(load_fer2013(args.data))
    print(f"{args.run_dir}; {torch.get_num_threads()} threads")
    print("views            PublicTest  PrivateTest")
    settings = [("none", 0, "face alone"), ("flip", 0, "face + mirror")]
    settings += [("shift", s, f"shift {s} px (10)") for s in args.shifts]
    for tta, shift, label in settings:
        scores = []
        for split in ("PublicTest", "PrivateTest"):
            images, labels = splits[split]
            logits = predict_logits(model, images, tta=tta, tta_shift=shift)
            scores.append(100 * float((logits.argmax(1) == labels).mean()))
        print(f"{label:16s} {scores[0]:9.2f}%  {scores[1]:10.2f}%", flush=True)


if __name__ == "__main__":
    main()
