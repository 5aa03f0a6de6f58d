"""Do zoomed or turned views add to test-time augmentation? PublicTest accuracy of models
averaged over views: the face and its mirror ("flip"), the 10 views of "shift"
(`ferlab.tta`), and those with copies zoomed by 0.9-1.1 or turned by 6 degrees (edges
repeated), each with its mirror. The views' log-probabilities are averaged, as `ferlab.tta`
does. PublicTest only: a view earns a place in `ferlab.tta` if it gains there.

    python benchmarks/tta_zoom_rotate.py default reports/runs/fast3w-kdD reports/runs/fast3w-kdF \
        --data ../shared/data/fer2013.csv.gz
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.data import IMAGE_SIZE, load_fer2013, train_val_test
from ferlab.hardware import machine_description
from ferlab.tta import tta_views

CENTRE = (IMAGE_SIZE - 1) / 2


def warped(faces: np.ndarray, zoom: float = 1.0, degrees: float = 0.0) -> np.ndarray:
    turn = cv2.getRotationMatrix2D((CENTRE, CENTRE), degrees, zoom)
    return np.stack([cv2.warpAffine(face, turn, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for face in faces])


def with_mirrors(*views: np.ndarray) -> list[np.ndarray]:
    return [v for view in views for v in (view, view[:, :, ::-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="what ferlab.load_model takes")
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    faces, labels = train_val_test(load_fer2013(args.data))["PublicTest"]
    zooms = {zoom: warped(faces, zoom=zoom) for zoom in (0.9, 0.95, 1.05, 1.1)}
    turns = [warped(faces, degrees=degrees) for degrees in (-6, 6)]
    settings = {
        "flip": with_mirrors(faces),
        "shift": tta_views(faces, "shift"),
        **{f"flip + zoom {z}": with_mirrors(faces, zooms[z]) for z in zooms},
        "flip + zoom 0.95 and 1.05": with_mirrors(faces, zooms[0.95], zooms[1.05]),
        "flip + zoom 0.9 and 1.1": with_mirrors(faces, zooms[0.9], zooms[1.1]),
        "flip + turned 6 degrees either way": with_mirrors(faces, *turns),
        "shift + zoom 0.95 and 1.05": tta_views(faces, "shift") + with_mirrors(zooms[0.95], zooms[1.05]),
        "shift + zoom 0.95 and 1.05 + turned": tta_views(faces, "shift") + with_mirrors(zooms[0.95], zooms[1.05], *turns),
    }
    print(f"{machine_description()}; PublicTest accuracy\n")
    print("| views | " + " | ".join(args.models) + " |")
    print("|---|" + "---|" * len(args.models))
    models = [load_model(name, backend="torch") for name in args.models]
    rows = {"face alone": [faces], **settings}
    for setting, views in rows.items():
        scores = []
        for model in models:
            log_probabilities = np.mean([np.log(np.maximum(model.predict_proba(np.ascontiguousarray(view)), 1e-30))
                                         for view in views], 0)
            scores.append(f"{np.mean(log_probabilities.argmax(1) == labels):.2%}")
        print(f"| {setting} ({len(views)}) | " + " | ".join(scores) + " |", flush=True)


if __name__ == "__main__":
    main()
