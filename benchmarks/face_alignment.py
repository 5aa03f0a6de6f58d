"""Does turning each face crop so that its eyes are level help the classifier?

FER2013 faces (PublicTest and PrivateTest, the same sample for every setting) are enlarged
4x on a grey canvas, turned by a random angle (none, up to 15 or up to 30 degrees either
way), found again by a landmark-giving detector, and cropped at that detector's default
margin, turning the crop upright when the eyes tilt by more than a threshold (never, or
above 0, 5, 10, 15, 20 degrees; `ferlab.detect.crop_faces`). The classifier is scored on
each set of crops, and the threshold with the best mean PublicTest accuracy over the three
tilt settings and the detectors is the one to use.

    python benchmarks/face_alignment.py --data ../shared/data/fer2013.csv.gz [--model PATH] [--faces 1000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from detect_margin import refind

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.detect import DEFAULT_MARGIN, crop_faces

THRESHOLDS = (None, 0.0, 5.0, 10.0, 15.0, 20.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--faces", type=int, default=1000, help="faces per split")
    parser.add_argument("--detectors", nargs="+", default=["blazeface", "blazeface_short"])
    args = parser.parse_args()
    model = load_model(args.model)
    splits = train_val_test(load_fer2013(args.data))
    rng = np.random.default_rng(0)
    report = {}
    for split in ("PublicTest", "PrivateTest"):
        images, labels = splits[split]
        rows = rng.permutation(len(labels))[: args.faces]
        images, labels = images[rows], labels[rows]
        for max_angle in (0, 15, 30):
            angles = rng.uniform(-max_angle, max_angle, len(labels))
            for detector in args.detectors:
                canvases, faces = refind(images, detector, angles)
                hit = np.array([f is not None for f in faces])
                found = [f for f in faces if f is not None]
                scores = {"found": round(float(hit.mean()), 4),
                          "original_crop_accuracy": round(float((model.predict(images[hit]) == labels[hit]).mean()), 4)}
                for threshold in THRESHOLDS:
                    crops = np.stack([crop_faces(c, [f], DEFAULT_MARGIN[detector], align_min_tilt=threshold)[0]
                                      for c, f in zip(canvases[hit], found, strict=True)])
                    accuracy = float((model.predict(crops) == labels[hit]).mean())
                    scores[f"turn_above_{threshold}"] = round(accuracy, 4)
                report[f"{split} tilt<={max_angle} {detector}"] = scores
                print(f"{split:12s} tilt <= {max_angle:2d} deg  {detector:16s} {json.dumps(scores)}", flush=True)
    for split in ("PublicTest", "PrivateTest"):
        means = {t: np.mean([v[f"turn_above_{t}"] for k, v in report.items() if k.startswith(split)]) for t in THRESHOLDS}
        print(f"{split}: mean accuracy by threshold " + ", ".join(f"{t}: {m:.4f}" for t, m in means.items()))


if __name__ == "__main__":
    main()
