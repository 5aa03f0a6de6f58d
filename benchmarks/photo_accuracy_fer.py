"""`ferlab photo-accuracy` on FER2013 faces made into photos: the whole photo pipeline
(decoding, detection, crop, classification) against the classifier on FER2013's own crops.

Each face is enlarged 4x (192 pixels, bicubic) in the middle of a grey 320x320 photo, saved
as JPEG (quality 95) under <expression>/, and the folder is scored as a user's labelled
photos would be (`ferlab.photo_accuracy`). Beside it, the same model on the same faces'
48x48 crops, and on the crops of the photos where a face was found. PrivateTest is shown, not
used to choose anything. With --as-crops the files are FER2013's 48x48 faces themselves,
searched for faces or, with --cropped too, classified whole (`ferlab photo-accuracy --cropped`).

    python benchmarks/photo_accuracy_fer.py --data ../shared/data/fer2013.csv.gz [--faces 1000]
    python benchmarks/photo_accuracy_fer.py --data ../shared/data/fer2013.csv.gz --as-crops [--cropped]
    python benchmarks/photo_accuracy_fer.py --data ../shared/data/fer2013.csv.gz [--as-crops --cropped] --no-auto-levels
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ferlab.data import EMOTIONS, load_fer2013, train_val_test
from ferlab.detect import DEFAULT_DETECTOR, DETECTORS
from ferlab.hardware import machine_description
from ferlab.photo_accuracy import photo_accuracy
from ferlab.predict import Analyzer


def write_photos(faces: np.ndarray, labels: np.ndarray, root: Path, as_crops: bool) -> list[Path]:
    paths = []
    for i, (face, label) in enumerate(zip(faces, labels, strict=True)):
        path = root / EMOTIONS[label].lower() / f"{i:05d}.{'png' if as_crops else 'jpg'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if as_crops:
            cv2.imwrite(str(path), face)
        else:
            photo = np.full((320, 320), 128, np.uint8)
            photo[64:256, 64:256] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces", type=int, default=1000, help="faces of each split")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    parser.add_argument("--as-crops", action="store_true", help="the files are the 48x48 faces themselves (PNG)")
    parser.add_argument("--cropped", action="store_true", help="classify each file whole, without searching it")
    parser.add_argument("--no-auto-levels", action="store_true", help="each photo and face as it is (ferlab.exposure)")
    args = parser.parse_args()
    analyzer = Analyzer(detector=args.detector, cropped=args.cropped, auto_levels=not args.no_auto_levels)
    splits = train_val_test(load_fer2013(args.data))
    print(f"{machine_description()}; bundled default on {type(analyzer.model).__name__}; "
          f"{'the files classified whole' if args.cropped else args.detector}; "
          f"{'48x48 faces as PNG' if args.as_crops else 'faces 4x on grey 320x320 JPEGs'}\n")
    print("| split | photos | face found in | accuracy where found | accuracy of all photos | the same faces' 48x48 "
          "crops: all / where found | seconds |")
    print("|---|---|---|---|---|---|---|")
    for split in ("PublicTest", "PrivateTest"):
        faces, labels = (a[: args.faces] for a in splits[split])
        crops_right = analyzer.model.predict_proba(faces).argmax(1) == labels
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_photos(faces, labels, Path(tmp), args.as_crops)
            start = time.perf_counter()
            result = photo_accuracy(tmp, analyzer, progress=False)
            seconds = time.perf_counter() - start
        missed = {str(path) for path in result["without_a_face"]}
        found = np.array([str(path) not in missed for path in paths])
        print(f"| {split} | {result['photos']} | {found.mean():.1%} | {result['accuracy_where_a_face_was_found']:.2%} | "
              f"{result['accuracy_of_all_readable_photos']:.2%} | {crops_right.mean():.2%} / "
              f"{crops_right[found].mean():.2%} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
