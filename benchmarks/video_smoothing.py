"""Does smoothing each face track's probabilities over time (`ferlab video --smooth`) steady
the labels without making them late?

No labelled FER video ships with ferlab, so a stand-in is made from FER2013: a "video" of
one track at 30 frames/s in which each face of a split is held for ``--hold-s`` seconds and
then replaced by the next, its expression (and, unlike real video, its identity) changing at
each cut. Each frame is a fresh random jitter of the held face, for the frame-to-frame change
a camera gives: a shift of up to 2 pixels, a turn of up to 5 degrees, a 5% zoom, brightness
and contrast within 10%, and sensor noise (sd 4 grey levels). The bundled default classifies
every frame; `ferlab.track.TrackSmoother` smooths them with each time constant, and
`ferlab.track.LabelHold` keeps each label until another expression leads it by a margin (the
short time constants are tried with each margin). Reported per split, time constant and
margin: the share of frames labelled right, the same over each hold's first 0.2 s (the lag
after a change), and label changes per second of video against the changes the true labels
make. The time constant and margin are chosen on PublicTest.

    python benchmarks/video_smoothing.py --data ../shared/data/fer2013.csv.gz [--faces 1000]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.hardware import machine_description
from ferlab.track import LabelHold, TrackSmoother

FPS = 30
TIME_CONSTANTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def jittered(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One camera frame's worth of change to a 48x48 face."""
    turn = cv2.getRotationMatrix2D((23.5, 23.5), rng.uniform(-5, 5), rng.uniform(0.95, 1.05))
    turn[:, 2] += rng.uniform(-2, 2, 2)
    moved = cv2.warpAffine(face, turn, (48, 48), borderMode=cv2.BORDER_REFLECT).astype(float)
    lit = (moved - 128) * rng.uniform(0.9, 1.1) + 128 + rng.uniform(-10, 10)
    return np.clip(lit + rng.normal(0, 4, lit.shape), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--faces", type=int, default=1000, help="faces per split, drawn at random")
    parser.add_argument("--hold-s", type=float, default=1.0, help="seconds each face is held")
    parser.add_argument("--margin-up-to-s", type=float, default=0.1,
                        help="time constants up to this one are also tried with each label margin")
    args = parser.parse_args()
    splits = train_val_test(load_fer2013(args.data))
    model = load_model(args.model)
    hold = round(args.hold_s * FPS)
    onset = round(0.2 * FPS)
    print(f"{machine_description()}; model {args.model}; {args.faces} faces per split, each held "
          f"{args.hold_s} s at {FPS} frames/s")
    print("| split | time constant | label margin | frames right | right in a hold's first 0.2 s | label changes/s "
          "| true changes/s |")
    print("|---|---|---|---|---|---|---|")
    for split in ("PublicTest", "PrivateTest"):
        rng = np.random.default_rng(0)
        images, labels = splits[split]
        chosen = rng.choice(len(labels), min(args.faces, len(labels)), replace=False)
        frames = np.stack([jittered(images[i], rng) for i in chosen for _ in range(hold)])
        truth = np.repeat(labels[chosen], hold)
        raw = model.predict_proba(frames)
        seconds = len(truth) / FPS
        first = (np.arange(len(truth)) % hold) < onset
        true_changes = np.count_nonzero(np.diff(truth)) / seconds
        for constant in TIME_CONSTANTS:
            smoother = TrackSmoother(constant)
            smoothed = [smoother.update(0, p, i / FPS) for i, p in enumerate(raw)]
            for margin in MARGINS if constant <= max(args.margin_up_to_s, 0) else (0.0,):
                keeper = LabelHold(margin)
                predicted = np.array([keeper.update(0, p) for p in smoothed])
                right = predicted == truth
                print(f"| {split} | {constant} s | {margin} | {right.mean():.2%} | {right[first].mean():.2%} "
                      f"| {np.count_nonzero(np.diff(predicted)) / seconds:.2f} | {true_changes:.2f} |", flush=True)
        held = raw.reshape(-1, hold, raw.shape[1]).mean(1).argmax(1)  # knows where each hold starts
        print(f"| {split} | each hold's average (an upper bound) | – | {(held == labels[chosen]).mean():.2%} | – "
              f"| – | {true_changes:.2f} |")


if __name__ == "__main__":
    main()
