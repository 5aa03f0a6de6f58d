"""How small may a face be, and how should a small crop be enlarged to 48x48?

A face found in a photo is cropped and resized to 48x48 (`ferlab.detect.crop_faces`): shrunk
when it is bigger, enlarged when it is smaller (`ferlab.detect.ENLARGE_INTERPOLATION`).

1. FER2013's own faces made small: each 48x48 face is shrunk to SxS pixels (area averaging,
   as a camera further away would see it), enlarged back to 48x48 by each OpenCV
   interpolation, and classified by the bundled default model. Chosen on PublicTest;
   PrivateTest is shown, not used.
2. How small a face each detector finds: the bundled astronaut portrait shrunk so that its
   face is S pixels high, in a grey 640x480 or 1280x960 photo. (FER2013's tightly cropped
   faces on a grey canvas are no test here: BlazeFace found almost none of them below 56
   pixels.) A crop is enlarged only when the face box, grown by the detector's margin, is
   under 48 pixels.

3. With ``--tta``, instead: the faces shrunk and enlarged as `crop_faces` enlarges them
   (Lanczos) and classified with each test-time augmentation, to choose the one for faces too
   small for their crop (`ferlab.predict.SMALL_FACE_TTA`), on PublicTest and by its cost (each
   TTA's time for 30 faces is printed first).

    python benchmarks/small_faces.py --data ../shared/data/fer2013.csv.gz [--tta]
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.data import IMAGE_SIZE, load_fer2013, train_val_test
from ferlab.detect import DETECTORS, detect_faces
from ferlab.hardware import machine_description
from ferlab.imageio import load_image
from ferlab.tta import TTA_MODES

ENLARGE = {"area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR,
           "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def shrunk_and_enlarged(faces: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    return np.stack([cv2.resize(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA), (IMAGE_SIZE, IMAGE_SIZE),
                                interpolation=interpolation) for face in faces])


def smallest_found(sides: list[int]) -> None:
    """Which detector finds the astronaut's face (107 pixels high in the bundled photo) when the
    portrait is shrunk so that the face is S pixels high and set in a grey 640x480 or 1280x960
    photo (BlazeFace searches photos over 640 pixels in tiles)."""
    portrait = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))
    print("\nThe astronaut's face found at S pixels high (box width found, or -)\n")
    print("| photo | detector | " + " | ".join(f"{side} px" for side in sides) + " |")
    print("|---|---|" + "---|" * len(sides))
    for width, height in ((640, 480), (1280, 960)):
        for detector in DETECTORS:
            cells = []
            for side in sides:
                small = cv2.resize(portrait, None, fx=side / 107, fy=side / 107, interpolation=cv2.INTER_AREA)
                photo = np.full((height, width, 3), 128, np.uint8)
                photo[40 : 40 + small.shape[0], 200 : 200 + small.shape[1]] = small
                cells.append(" ".join(str(face.box[2]) for face in detect_faces(photo, detector)) or "-")
            print(f"| {width}x{height} | {detector} | " + " | ".join(cells) + " |", flush=True)


def compare_tta(model, splits: dict, sides: list[int]) -> None:
    """Part 3: the cost of each test-time augmentation on 30 faces (a crowded frame's small
    ones; best of 10), then accuracy by face size and TTA (Lanczos enlargement)."""
    crowd = splits["PublicTest"][0][:30]
    for tta in TTA_MODES:
        model.predict_proba(crowd, tta=tta)  # warm-up
        times = []
        for _ in range(10):
            start = time.perf_counter()
            model.predict_proba(crowd, tta=tta)
            times.append(time.perf_counter() - start)
        print(f"30 faces, TTA {tta}: {1000 * min(times):.1f} ms")
    print("\n| split | TTA | " + " | ".join(f"{side} px" for side in sides) + " | mean under 48 px |")
    print("|---|---|" + "---|" * (len(sides) + 1))
    for split in ("PublicTest", "PrivateTest"):
        faces, labels = splits[split]
        sized = {side: faces if side == IMAGE_SIZE else shrunk_and_enlarged(faces, side, ENLARGE["lanczos"])
                 for side in sides}
        for tta in TTA_MODES:
            accuracy = {side: np.mean(model.predict_proba(crops, tta=tta).argmax(axis=1) == labels)
                        for side, crops in sized.items()}
            small = [a for side, a in accuracy.items() if side < IMAGE_SIZE]
            print(f"| {split} | {tta} | " + " | ".join(f"{100 * a:.2f}%" for a in accuracy.values())
                  + f" | {100 * np.mean(small):.2f}% |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="default", help="bundled name or run folder (default: %(default)s)")
    parser.add_argument("--sides", type=int, nargs="+", default=[12, 16, 20, 24, 32, 40])
    parser.add_argument("--detector-sides", type=int, nargs="+", default=[24, 32, 40, 48, 56, 64, 80],
                        help="part 2's face heights")
    parser.add_argument("--tta", action="store_true", help="part 3 alone: each TTA on the enlarged faces")
    args = parser.parse_args()
    splits = train_val_test(load_fer2013(args.data))
    model = load_model(args.model)
    print(f"{machine_description()}; {args.model} on {type(model).__name__}")
    if args.tta:
        compare_tta(model, splits, [*args.sides, IMAGE_SIZE])
        return
    for split in ("PublicTest", "PrivateTest"):
        faces, labels = splits[split]
        full = np.mean(model.predict_proba(faces).argmax(axis=1) == labels)
        print(f"\n{split} (48x48 as given: {100 * full:.2f}%)\n")
        print("| enlarged by | " + " | ".join(f"{side} px" for side in args.sides) + " | mean |")
        print("|---|" + "---|" * (len(args.sides) + 1))
        for name, interpolation in ENLARGE.items():
            accuracy = [np.mean(model.predict_proba(shrunk_and_enlarged(faces, side, interpolation)).argmax(axis=1)
                                == labels) for side in args.sides]
            print(f"| {name} | " + " | ".join(f"{100 * a:.2f}%" for a in accuracy)
                  + f" | {100 * np.mean(accuracy):.2f}% |", flush=True)
    smallest_found(args.detector_sides)


if __name__ == "__main__":
    main()
