"""Which occlusion patch and units give the most faithful maps? Chooses `ferlab.explain.PATCH`
and `UNITS`.

For each score (log-odds or probability) and patch size (stride half the patch), occlusion
maps of the bundled default model on PublicTest faces, then `ferlab.explain.deletion_curve`:
accuracy as the pixels each face's map (for its predicted class) ranks highest are hidden,
against another face's map and random patches. The lowest area under the salient curve is
the most faithful; the table also gives the cost (classifier passes and seconds per face).

    python benchmarks/explain_patch.py --data ../shared/data/fer2013.csv.gz [--faces 500]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.explain import SCORES, deletion_curve, occlusion_maps, patch_corners
from ferlab.hardware import machine_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="default", help="bundled name or run folder (default: %(default)s)")
    parser.add_argument("--backend", default="torch", help="torch (default, quicker here) or onnx")
    parser.add_argument("--faces", type=int, default=500, help="first N PublicTest faces (default: %(default)s)")
    parser.add_argument("--patches", type=int, nargs="+", default=[4, 6, 8, 12, 16])
    parser.add_argument("--units", nargs="+", default=list(SCORES), choices=list(SCORES))
    args = parser.parse_args()
    faces, labels = train_val_test(load_fer2013(args.data))["PublicTest"]
    faces, labels = faces[: args.faces], labels[: args.faces]
    model = load_model(args.model, backend=args.backend)
    predicted = model.predict_proba(faces).argmax(axis=1)
    print(f"{machine_description()}; {args.model} ({args.backend}), the first {len(faces)} PublicTest faces")
    print("| units | patch | stride | passes a face | s a face | accuracy with 5 / 10 / 20% hidden: salient "
          "| another face's map | random patches | area: salient | another face's map | random patches |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for units, patch in itertools.product(args.units, args.patches):
        stride = max(1, patch // 2)
        start = time.perf_counter()
        maps = occlusion_maps(model, faces, patch=patch, stride=stride, units=units)
        seconds = (time.perf_counter() - start) / len(faces)
        curve = deletion_curve(model, faces, labels, maps[np.arange(len(faces)), predicted], patch=patch, stride=stride)
        at = [curve["fractions"].index(f) for f in (0.05, 0.1, 0.2)]
        names = ("salient", "another_face", "random_patches")
        cells = [" / ".join(f"{100 * curve[name][i]:.1f}" for i in at) for name in names]
        passes = len(patch_corners(patch, stride)) + 1
        print(f"| {units} | {patch} | {stride} | {passes} | {seconds:.3f} | {' | '.join(cells)} | "
              f"{100 * curve['area_salient']:.1f} | {100 * curve['area_another_face']:.1f} | "
              f"{100 * curve['area_random_patches']:.1f} |", flush=True)
    print(f"accuracy with nothing hidden: {100 * np.mean(predicted == labels):.1f}%")


if __name__ == "__main__":
    main()
