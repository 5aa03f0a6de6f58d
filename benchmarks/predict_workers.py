"""Photos per second of `ferlab predict` over a folder: one process or several (--workers).

A folder of --photos 640x480 JPEG photos, each with the bundled portrait at a random place on
a random grey (seeded), is analyzed by `ferlab.predict.predict_files` three ways, each in a
fresh process: one process with all this machine's CPUs (ONNX Runtime with one thread per
CPU), one process on one CPU (one thread), and one worker process per CPU (`--workers`, one
thread each). Also checks that the workers' results equal the single process's.

    python benchmarks/predict_workers.py [--photos 400] [--size 640x480]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from ferlab.hardware import machine_description
from ferlab.imageio import load_image
from ferlab.parallel import available_cpus
from ferlab.predict import build_analyzer, predict_files


def write_photos(folder: Path, count: int, width: int, height: int) -> None:
    portrait = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = np.full((height, width, 3), int(rng.integers(60, 200)), np.uint8)
        x, y = int(rng.integers(0, width - 512 + 1)), int(rng.integers(0, max(1, height - 512 + 1)))
        part = portrait[: height - y]
        photo[y : y + len(part), x : x + 512] = part
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])


def run(folder: str, workers: int, one_cpu: bool, out: str) -> None:
    """One way, in this process: writes its time and results to ``out``."""
    if one_cpu:
        os.sched_setaffinity(0, {available_cpus()[0]})
    build = partial(build_analyzer)
    analyzer = build if workers > 1 else build()
    list(predict_files([sorted(Path(folder).iterdir())[0].as_posix()], analyzer if workers == 1 else build(),
                       progress=False))  # warm-up: models loaded, first passes done
    start = time.perf_counter()
    results = list(predict_files([folder], analyzer, progress=False, workers=workers))
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - start, "results": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--run", nargs=4, metavar=("FOLDER", "WORKERS", "ONE_CPU", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        folder, workers, one_cpu, out = args.run
        run(folder, int(workers), one_cpu == "1", out)
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    cpus = len(available_cpus())
    print(f"{machine_description()}; {args.photos} photos of {width}x{height}, one face each\n")
    print("| way | processes x threads | seconds | photos/s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        write_photos(folder, args.photos, width, height)
        outcomes = {}
        for name, workers, one_cpu, shape in (("one process, all CPUs", 1, False, f"1 x {cpus}"),
                                              ("one process, one CPU", 1, True, "1 x 1"),
                                              (f"--workers {cpus}", cpus, False, f"{cpus} x 1")):
            out = Path(tmp) / f"{workers}-{one_cpu}.json"
            subprocess.run([sys.executable, __file__, "--run", str(folder), str(workers), "1" if one_cpu else "0",
                            str(out)], check=True)
            outcomes[name] = json.loads(out.read_text())
            seconds = outcomes[name]["seconds"]
            print(f"| {name} | {shape} | {seconds:.2f} | {args.photos / seconds:.0f} |", flush=True)
        same = outcomes["one process, all CPUs"]["results"] == outcomes[f"--workers {cpus}"]["results"]
        print(f"\nThe workers' results equal the single process's: {same}")


if __name__ == "__main__":
    main()
