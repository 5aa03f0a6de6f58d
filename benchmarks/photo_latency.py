"""Latency of one 640x480 photo with one face: decode-free detection + crop + classification.

The photo is the bundled astronaut portrait (512x512) in the middle of a grey 640x480 canvas,
or of a canvas of --size (a video frame, say). Reports the median of many runs per detector,
and the share spent detecting.

    python benchmarks/photo_latency.py [--model PATH] [--runs 50] [--tta shift] [--backend torch]
    python benchmarks/photo_latency.py --size 3840x2160 --detectors blazeface   # a 4K video frame
    python benchmarks/photo_latency.py --explain --runs 10   # with each face's occlusion map (ferlab.explain)
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from importlib import resources

import numpy as np

from ferlab.classifier import BACKENDS, load_model
from ferlab.detect import DETECTORS, detect_faces
from ferlab.hardware import machine_description
from ferlab.imageio import load_image
from ferlab.predict import Analyzer
from ferlab.tta import TTA_MODES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto: ONNX Runtime where the model has an ONNX form, else PyTorch (ferlab.load_model)")
    parser.add_argument("--explain", action="store_true", help="with each face's occlusion map (analyze(explain=True))")
    parser.add_argument("--size", default="640x480", help="the photo's width x height (at least 512 x 480)")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    portrait = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))
    photo = np.full((height, width, 3), 90, np.uint8)
    top, left = max(0, (height - 512) // 2), (width - 512) // 2
    photo[top : top + 512, left : left + 512] = portrait[: height - top]
    model = load_model(args.model, tta=args.tta, backend=args.backend)
    print(f"{machine_description()}; {width}x{height} photo, one face; median of {args.runs} runs; tta {args.tta}; "
          f"classifier on {type(model).__name__}{'; with occlusion maps' if args.explain else ''}")
    for name in args.detectors:
        analyzer = Analyzer(model, detector=name)
        analyze = partial(analyzer.analyze, explain=args.explain)
        analyze(photo)  # warm-up
        total, detect = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            faces = analyze(photo)
            total.append(time.perf_counter() - start)
            start = time.perf_counter()
            detect_faces(photo, name)
            detect.append(time.perf_counter() - start)
        print(f"{name:5s}: {1000 * statistics.median(total):6.1f} ms per photo "
              f"(detection alone {1000 * statistics.median(detect):5.1f} ms), faces found: {len(faces)}")


if __name__ == "__main__":
    main()
