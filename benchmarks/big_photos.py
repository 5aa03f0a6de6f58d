"""Big JPEG photos decoded reduced (`ferlab.imageio.decode_image`) against decoded whole.

A photo of 12 megapixels or more is searched for faces at about 2,000 pixels wide
(`ferlab.detect.MAX_DETECT_SIDE`), so ferlab decodes a big JPEG at 1/2, 1/4 or 1/8 of its
size (libjpeg scales while it decodes) as long as its longer side stays at least
`ferlab.detect.DECODE_MIN_SIDE`. Three questions, each answered for both ways of decoding:

1. Time per photo (decoding, detection, crops and classification; median of --runs, the two
   ways alternated): JPEG photos of 12, 24 and 48 megapixels made of scikit-image's photos,
   the astronaut's face among them, and the 12-megapixel one as HEIC (pillow-heif: the
   "heic" extra).
2. Faces found: benchmarks/group_photos.py's group photos (the astronaut's face repeated at S
   pixels high) at 4032x3024, saved as JPEG (quality 92). A face is found when a detection's
   centre falls in its box.
3. Crops: FER2013 faces enlarged to S pixels in a grid over 4032x3024 JPEG photos, each
   cropped at its own box and classified by the bundled default (FER2013's tight crops on
   grey are found too rarely by BlazeFace to test them through detection). Chosen on
   PublicTest; PrivateTest is shown, not used.

    python benchmarks/big_photos.py --data ../shared/data/fer2013.csv.gz [--faces 600] [--runs 7]
    python benchmarks/big_photos.py --times-only [--runs 7]   # question 1 alone, no data needed
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from group_photos import group_photo
from PIL import Image

from ferlab.data import load_fer2013, train_val_test
from ferlab.detect import DECODE_MIN_SIDE, Face, crop_faces, to_gray
from ferlab.hardware import machine_description
from ferlab.imageio import decode_image, load_image
from ferlab.predict import Analyzer

SIZES = {"12 MP": (4032, 3024), "24 MP": (6000, 4000), "48 MP": (8064, 6048)}


def mosaic(width: int, height: int) -> np.ndarray:
    """Scikit-image's colour photos, each enlarged to a third of the photo's height, side by side."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket(),
              skimage.data.immunohistochemistry(), skimage.data.hubble_deep_field()]
    cell = height // 3
    canvas = np.zeros((height, width, 3), np.uint8)
    for i, (y, x) in enumerate((y, x) for y in range(0, height - cell + 1, cell) for x in range(0, width, cell)):
        part = cv2.resize(photos[i % len(photos)], (cell, cell), interpolation=cv2.INTER_CUBIC)
        canvas[y : y + cell, x : x + cell] = part[:, : width - x]
    return canvas


def save_jpeg(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path, "JPEG", quality=92)
    return path


def analyze_whole(analyzer: Analyzer, path: Path) -> list[dict]:
    """What `Analyzer.analyze` did before photos were decoded reduced."""
    faces, crops = analyzer.faces(load_image(path))
    return analyzer.records(faces, analyzer.model.predict_proba(crops))


def time_photos(analyzer: Analyzer, folder: Path, runs: int) -> None:
    print(f"\n1. Time per photo, median of {runs} (decode + detect + crop + classify)\n")
    print("| photo | decoded reduced | decoded whole | faces found (reduced / whole) |")
    print("|---|---|---|---|")
    for name, (width, height) in SIZES.items():
        path = save_jpeg(mosaic(width, height), folder / "mosaic.jpg")
        ways = {"reduced": analyzer.analyze, "whole": lambda p: analyze_whole(analyzer, p)}
        seconds, found = {way: [] for way in ways}, {}
        for way, analyze in ways.items():
            found[way] = len(analyze(path))  # warm-up
        for _ in range(runs):
            for way, analyze in ways.items():
                start = time.perf_counter()
                analyze(path)
                seconds[way].append(time.perf_counter() - start)
        ms = {way: 1000 * statistics.median(s) for way, s in seconds.items()}
        print(f"| {name} ({width}x{height}) | {ms['reduced']:.0f} ms | {ms['whole']:.0f} ms | "
              f"{found['reduced']} / {found['whole']} |")
    # An iPhone's format: no reduced decoding there (pillow-heif decodes HEVC whole).
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = folder / "mosaic.heic"
    Image.fromarray(mosaic(*SIZES["12 MP"])).save(path, "HEIF", quality=85)
    found = len(analyzer.analyze(path))
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        analyzer.analyze(path)
        seconds.append(time.perf_counter() - start)
    print(f"| 12 MP HEIC (4032x3024, pillow-heif {pillow_heif.__version__}) | – | "
          f"{1000 * statistics.median(seconds):.0f} ms | – / {found} |")


def found_astronauts(analyzer: Analyzer, folder: Path) -> None:
    """The group photos of benchmarks/group_photos.py at 4032x3024, saved as JPEG."""
    cut = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))[30:210, 130:310]
    print("\n2. Faces found in 4032x3024 JPEG group photos (benchmarks/group_photos.py)\n")
    print("| face | found, reduced | found, whole | mean IoU with the true box, reduced | whole | reduced with whole |")
    print("|---|---|---|---|---|---|")
    for side in (96, 128, 192):
        photo, boxes = group_photo(cut, 4032, 3024, side)
        path = save_jpeg(photo, folder / "group.jpg")
        found = {way: matched(analyze(path), boxes)
                 for way, analyze in (("reduced", analyzer.analyze), ("whole", lambda p: analyze_whole(analyzer, p)))}
        truth = {way: np.mean([iou(record["box"], boxes[i]) for i, record in records.items()])
                 for way, records in found.items()}
        both = found["reduced"].keys() & found["whole"].keys()
        between = np.mean([iou(found["reduced"][i]["box"], found["whole"][i]["box"]) for i in both])
        print(f"| {side} px | {len(found['reduced'])} of {len(boxes)} | {len(found['whole'])} of {len(boxes)} | "
              f"{truth['reduced']:.3f} | {truth['whole']:.3f} | {between:.3f} |")


def matched(records: list[dict], boxes: list) -> dict[int, dict]:
    """The first record whose box centre falls in each true box, by the box's index."""
    found = {}
    for record in records:
        x, y, w, h = record["box"]
        for index, (bx, by, bw, bh) in enumerate(boxes):
            if bx <= x + w / 2 < bx + bw and by <= y + h / 2 < by + bh:
                found.setdefault(index, record)
    return found


def iou(a: list[int], b: list[int]) -> float:
    width = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return width * height / (a[2] * a[3] + b[2] * b[3] - width * height)


def fer_photos(faces: np.ndarray, side: int, width: int = 4032, height: int = 3024):
    """Photos with ``faces`` (48x48 grey) enlarged to ``side`` pixels in a grid, each with its
    faces' boxes."""
    per_row, per_column = width // (2 * side), height // (2 * side)
    for first in range(0, len(faces), per_row * per_column):
        photo = np.full((height, width), 128, np.uint8)
        boxes = []
        for k, face in enumerate(faces[first : first + per_row * per_column]):
            x, y = (k % per_row) * 2 * side + side // 2, (k // per_row) * 2 * side + side // 2
            photo[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            boxes.append((x, y, side, side))
        yield np.repeat(photo[:, :, None], 3, 2), boxes


def crop_accuracy(analyzer: Analyzer, folder: Path, faces: np.ndarray, labels: np.ndarray, split: str) -> None:
    """Each face cropped at its own box from the photo decoded whole and decoded reduced."""
    for side in (64, 96, 128, 192):
        crops = {"reduced": [], "whole": []}
        for photo, boxes in fer_photos(faces, side):
            path = save_jpeg(photo, folder / "faces.jpg")
            for way, min_side in (("reduced", DECODE_MIN_SIDE), ("whole", None)):
                decoded = decode_image(path, min_side)
                scaled = [Face(tuple(v / decoded.factor for v in box), 1.0) for box in boxes]
                crops[way].append(crop_faces(to_gray(decoded.rgb), scaled, margin=0.0))
        labels_of = {way: analyzer.model.predict_proba(np.concatenate(c)).argmax(1) for way, c in crops.items()}
        right = {way: np.mean(predicted == labels) for way, predicted in labels_of.items()}
        same = np.mean(labels_of["reduced"] == labels_of["whole"])
        print(f"| {split} | {side} px | {side // 2} px | {right['reduced']:.2%} | {right['whole']:.2%} | {same:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the FER2013 file (questions 2 and 3)")
    parser.add_argument("--faces", type=int, default=600, help="faces of each split")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--times-only", action="store_true", help="question 1 alone")
    args = parser.parse_args()
    if not args.times_only and not args.data:
        parser.error("--data is needed for questions 2 and 3 (or ask for --times-only)")
    analyzer = Analyzer()
    print(f"{machine_description()}; bundled default model; DECODE_MIN_SIDE {DECODE_MIN_SIDE}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        time_photos(analyzer, folder, args.runs)
        if args.times_only:
            return
        found_astronauts(analyzer, folder)
        splits = train_val_test(load_fer2013(args.data))
        print("\n3. FER2013 faces at S pixels in 4032x3024 JPEG photos, cropped at their own box\n")
        print("| split | face | at half size | accuracy, reduced | accuracy, whole | same label |")
        print("|---|---|---|---|---|---|")
        for split in ("PublicTest", "PrivateTest"):
            images, labels = splits[split]
            crop_accuracy(analyzer, folder, images[: args.faces], labels[: args.faces], split)


if __name__ == "__main__":
    main()
