"""Fine-tuning the bundled default on faces of one's own, by the commands a user runs.

FER2013 faces are made into pictures of one of two kinds (``--domain``): ``photos``, each face
enlarged 4x on a grey 320x320 JPEG (as in `photo_accuracy_fer.py`), a camera close to FER2013's;
``small``, each face shrunk to 24x24 pixels and saved as a crop (a distant camera, CCTV, a
classroom: the classifier sees it enlarged back to 48x48, and is about 57% right on such faces
against 71% at 48; `small_faces.py`). ``--train-faces`` Training faces, ``--faces`` PublicTest
and PrivateTest faces. `ferlab predict PICTURES --crops DIR` (``--cropped`` for small ones, which
are crops already) writes every face as the model sees it into a folder per predicted label; each
is then moved into its true label's folder, as a user checks them (``mine/train``, ``mine/val``,
``mine/test``: Training, PublicTest and PrivateTest faces).
Then, each run fixed here before any result was seen:

    ferlab evaluate default --data mine                       # before: the default on these crops
    ferlab train --data mine --init default --out RUN ...     # the default's recipe at lr 0.0003
    ferlab evaluate RUN --data mine --compare default         # after, on the same test crops
    ferlab evaluate RUN --data fer2013.csv.gz                 # what it keeps of FER2013's own crops

once plainly and once with ``--teacher default`` (distilled from the start, so that it keeps what
it knew). The validation crops (PublicTest) choose each run's epoch; the test crops (PrivateTest)
are shown, not used.

    python benchmarks/adapt_own_faces.py --data ../shared/data/fer2013.csv.gz --train-faces 1000 4000 28709
    python benchmarks/adapt_own_faces.py --data ../shared/data/fer2013.csv.gz --domain small --train-faces 4000 28709
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from photo_accuracy_fer import write_photos

from ferlab.data import EMOTIONS, load_fer2013, train_val_test
from ferlab.hardware import machine_description

SPLIT_FOLDERS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
RECIPE = ["--epochs", "10", "--batch-size", "128", "--optimizer", "adamw", "--lr", "0.0003", "--weight-decay", "0.0005",
          "--schedule", "onecycle", "--label-smoothing", "0.1", "--augment", "strong"]
SMALL_SIDE = 24  # --domain small: each face shrunk to this many pixels on a side
VARIANTS = {"plain": [], "distilled from the default": ["--teacher", "default", "--distill-weight", "0.5"]}


def ferlab(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ferlab", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ferlab {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def write_small_faces(faces: np.ndarray, labels: np.ndarray, root: Path) -> None:
    for i, (face, label) in enumerate(zip(faces, labels, strict=True)):
        (root / EMOTIONS[label].lower()).mkdir(parents=True, exist_ok=True)
        small = cv2.resize(face, (SMALL_SIDE, SMALL_SIDE), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / EMOTIONS[label].lower() / f"{i:05d}.png"), small)


def checked_crops(faces, labels, domain: str, pictures: Path, sorted_by_model: Path, mine: Path) -> int:
    """`ferlab predict --crops` on pictures of ``faces``, then each picture's first face moved to
    its true label's folder under ``mine`` (extra faces, false finds, dropped as a user would)."""
    if domain == "small":
        write_small_faces(faces, labels, pictures)
    else:
        write_photos(faces, labels, pictures, as_crops=False)
    ferlab("predict", str(pictures), "--crops", str(sorted_by_model), "--quiet", "--out", str(pictures) + ".jsonl",
           *(["--cropped"] if domain == "small" else []))
    moved = 0
    for crop in sorted_by_model.glob("*/*.face0.png"):
        label = EMOTIONS[labels[int(crop.name.split(".")[0])]].lower()
        (mine / label).mkdir(parents=True, exist_ok=True)
        shutil.move(crop, mine / label / crop.name)
        moved += 1
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--domain", choices=["photos", "small"], default="photos",
                        help="photos: faces 4x on grey JPEGs, searched; small: 24x24 face crops")
    parser.add_argument("--train-faces", type=int, nargs="+", default=[1000, 4000],
                        help="Training faces made into labelled photos, one set of runs for each")
    parser.add_argument("--faces", type=int, default=1500, help="PublicTest and PrivateTest faces made into photos")
    parser.add_argument("--keep", help="keep the crops and runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    splits = train_val_test(load_fer2013(args.data))
    print(f"{machine_description()}; {args.domain}; the bundled default fine-tuned with: {' '.join(RECIPE)}\n")
    print("| labelled training faces | run | test crops: before | after | only before / only after right "
          "(McNemar p) | FER2013 PrivateTest after (before) | minutes |")
    print("|---|---|---|---|---|---|---|")
    fer_before = json.loads(ferlab("evaluate", "default", "--data", args.data))["test"]["accuracy"]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp())
    for n_train in args.train_faces:
        mine, found = work / f"mine{n_train}", {}
        for split, folder in SPLIT_FOLDERS.items():
            faces, labels = (a[: n_train if split == "Training" else args.faces] for a in splits[split])
            found[folder] = checked_crops(faces, labels, args.domain, work / f"pictures{n_train}" / folder,
                                          work / f"sorted{n_train}" / folder, mine / folder)
        print(f"<!-- {n_train} training pictures: faces found and checked {found} -->", flush=True)
        for name, flags in VARIANTS.items():
            run = work / f"run{n_train}-{name.split()[0]}"
            start = time.perf_counter()
            ferlab("train", "--data", str(mine), "--init", "default", "--out", str(run), *RECIPE, *flags)
            minutes = (time.perf_counter() - start) / 60
            compared = json.loads(ferlab("evaluate", str(run), "--data", str(mine), "--compare", "default"))
            test = compared["PrivateTest"]
            fer_after = json.loads(ferlab("evaluate", str(run), "--data", args.data))["test"]["accuracy"]
            print(f"| {found['train']} | {name} | {test['accuracy_b']:.2%} | {test['accuracy_a']:.2%} | "
                  f"{test['only_b_right']} / {test['only_a_right']} ({test['p_value']:.3f}) | "
                  f"{fer_after:.2%} ({fer_before:.2%}) | {minutes:.1f} |", flush=True)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
