"""Compare the face detectors and measure the crop margin that matches FER2013's framing.

1. Real photos shipped with scikit-image: how many faces each detector finds where the
   truth is known (two portraits with one face, seven photos with none), and how long it takes;
   then the astronaut's face framed at 15% to 65% of a 640x480 frame's height.
2. FER2013 faces re-found in larger frames: each 48x48 face is enlarged 4x and set on a
   grey 320x320 canvas; each detector must find it again, and the classifier is scored on
   the re-cropped face for several margins. The margin is chosen on PublicTest and then
   reported on PrivateTest, beside the accuracy on the original crops.

    python benchmarks/detect_margin.py --data ../shared/data/fer2013.csv.gz [--model PATH] [--faces 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.detect import DETECTORS, crop_faces, detect_faces

MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


def real_photos() -> list[tuple[str, np.ndarray, int]]:
    import skimage.data

    photos = [("astronaut", skimage.data.astronaut(), 1), ("camera", skimage.data.camera(), 1)]
    for name in ("chelsea", "coffee", "rocket", "hubble_deep_field", "brick", "grass", "page"):
        photos.append((name, getattr(skimage.data, name)(), 0))
    return [(n, img if img.ndim == 3 else np.repeat(img[:, :, None], 3, 2), k) for n, img, k in photos]


def compare_on_photos(detectors: list[str]) -> dict:
    photos = real_photos()
    results = {}
    for name in detectors:
        found_right = false_found = missed = 0
        start = time.perf_counter()
        for _, rgb, truth in photos:
            n = len(detect_faces(rgb, name))
            found_right += min(n, truth)
            missed += max(truth - n, 0)
            false_found += max(n - truth, 0)
        results[name] = {"photos": len(photos), "faces": sum(t for *_, t in photos), "found": found_right,
                         "missed": missed, "extra_detections": false_found,
                         "ms_per_photo": 1000 * (time.perf_counter() - start) / len(photos)}
    return results


def face_sizes(detectors: list[str]) -> dict:
    """Faces found in 640x480 frames cut around the astronaut's face (92 px, centre 224, 113)
    so that it fills a given fraction of the frame's height."""
    import skimage.data

    padded = cv2.copyMakeBorder(skimage.data.astronaut(), 600, 600, 600, 600, cv2.BORDER_REFLECT)
    found = {name: {} for name in detectors}
    for fraction in (0.15, 0.25, 0.35, 0.45, 0.55, 0.65):
        half_h, half_w = int(46 / fraction), int(46 / fraction * 4 / 3)
        crop = padded[600 + 113 - half_h : 600 + 113 + half_h, 600 + 224 - half_w : 600 + 224 + half_w]
        frame = cv2.resize(crop, (640, 480), interpolation=cv2.INTER_AREA)
        for name in detectors:
            found[name][fraction] = len(detect_faces(frame, name))
    return found


def refind(images: np.ndarray, detector: str, angles: np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """Canvas each face at 4x on grey, turned by ``angles`` (degrees) if given; return the
    canvases and the largest face found in each (or None)."""
    canvases, boxes = [], []
    for i, face in enumerate(images):
        canvas = np.full((320, 320), 128, np.uint8)
        canvas[64:256, 64:256] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        if angles is not None:
            turn = cv2.getRotationMatrix2D((160, 160), float(angles[i]), 1.0)
            canvas = cv2.warpAffine(canvas, turn, (320, 320), flags=cv2.INTER_LINEAR, borderValue=128)
        found = detect_faces(canvas, detector)
        canvases.append(canvas)
        boxes.append(found[0] if found else None)
    return np.stack(canvases), boxes


def margin_scores(model, images, labels, detector: str) -> dict:
    canvases, boxes = refind(images, detector)
    hit = np.array([b is not None for b in boxes])
    scores = {"found": float(hit.mean()),
              "original_crop_accuracy": float((model.predict(images[hit]) == labels[hit]).mean())}
    for margin in MARGINS:
        crops = np.stack([crop_faces(c, [b], margin)[0] for c, b in zip(canvases, boxes, strict=True) if b is not None])
        scores[f"margin_{margin}"] = float((model.predict(crops) == labels[hit]).mean())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--faces", type=int, default=1000, help="faces per split")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    args = parser.parse_args()
    print("== real photos")
    print(json.dumps(compare_on_photos(args.detectors), indent=2))
    print("== faces found by face height / frame height")
    print(json.dumps(face_sizes(args.detectors)))
    model = load_model(args.model)
    splits = train_val_test(load_fer2013(args.data))
    rng = np.random.default_rng(0)
    # the same faces for every detector
    samples = {split: rng.permutation(len(splits[split][1]))[: args.faces] for split in ("PublicTest", "PrivateTest")}
    for detector in args.detectors:
        report = {}
        for split, rows in samples.items():
            images, labels = splits[split]
            report[split] = margin_scores(model, images[rows], labels[rows], detector)
        best = max(MARGINS, key=lambda m: report["PublicTest"][f"margin_{m}"])
        print(f"== {detector}: margin chosen on PublicTest = {best}; PrivateTest accuracy at that margin "
              f"{report['PrivateTest'][f'margin_{best}']:.4f} vs original crops "
              f"{report['PrivateTest']['original_crop_accuracy']:.4f}")
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
