"""How many faces of a group photo does the detector find, by photo size and face size?

Synthetic group photos: the bundled astronaut portrait's face (a 180x180 cut around it, the
face about 92 pixels high) shrunk or enlarged so that the face is S pixels high and repeated
over a grey photo of W x H pixels, one in each cell of a grid (cells of the cut's side plus
one face), at a random place in its cell (seeded). A face counts as found when a
detection's centre falls in its box. Also the photos of scikit-image without a face
(benchmarks/detect_margin.py), where any detection is false.
Times are medians of 3 (detection only).

    python benchmarks/group_photos.py [--detector blazeface]
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib import resources

import cv2
import numpy as np
from detect_margin import real_photos

from ferlab.detect import DEFAULT_DETECTOR, DETECTORS, detect_faces
from ferlab.hardware import machine_description
from ferlab.imageio import load_image

FACE_IN_CUT = (48, 37, 92, 92)  # x, y, w, h of the face in the 180x180 cut (tests/test_detect.py)


def group_photo(cut: np.ndarray, width: int, height: int, face: int,
                seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    scale = face / FACE_IN_CUT[3]
    tile = cv2.resize(cut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    photo = np.full((height, width, 3), 110, np.uint8)
    boxes = []
    step = tile.shape[0] + face
    # Each face at a random place in its cell: faces on a regular grid fall at the same place in
    # every tile of the search, and then all are found or all are missed together.
    rng = np.random.default_rng(seed)
    for y in range(0, height - step + 1, step):
        for x in range(0, width - step + 1, step):
            x_at, y_at = (int(v) for v in (x, y) + rng.integers(0, face + 1, 2))
            photo[y_at : y_at + tile.shape[0], x_at : x_at + tile.shape[1]] = tile
            fx, fy, fw, fh = (round(v * scale) for v in FACE_IN_CUT)
            boxes.append((x_at + fx, y_at + fy, fw, fh))
    return photo, boxes


def timed(photo: np.ndarray, detector: str) -> tuple[list, float]:
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        faces = detect_faces(photo, detector)
        seconds.append(time.perf_counter() - start)
    return faces, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    parser.add_argument("--faces", type=int, nargs="+", default=[48, 64, 96, 128, 192])
    args = parser.parse_args()
    cut = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))[30:210, 130:310]
    print(f"{machine_description()}; {args.detector}\n")
    print("| photo | face | faces found | false detections | ms |")
    print("|---|---|---|---|---|")
    for width, height in ((1280, 960), (2000, 1500), (4032, 3024)):
        for face in args.faces:
            photo, boxes = group_photo(cut, width, height, face)
            found, seconds = timed(photo, args.detector)
            centres = [(f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in found]
            hit = [any(x <= cx < x + w and y <= cy < y + h for cx, cy in centres) for x, y, w, h in boxes]
            false = sum(not any(x <= cx < x + w and y <= cy < y + h for x, y, w, h in boxes) for cx, cy in centres)
            print(f"| {width}x{height} | {face} px | {sum(hit)} of {len(boxes)} | {false} | {1000 * seconds:.0f} |",
                  flush=True)
    false = {name: len(timed(rgb, args.detector)[0]) for name, rgb, faces in real_photos() if faces == 0}
    print(f"\nDetections in the {len(false)} photos without a face: {false}")


if __name__ == "__main__":
    main()
