"""How big is `ferlab video --html`'s page for a long video, and how fast does it open?

An answer of ``--minutes`` of video at ``--fps`` analyzed frames a second with ``--faces``
faces in each (records as `ferlab.analyze` gives them, random probabilities) is written as a
viewer (`ferlab.viewer.write_viewer`) and opened in headless Chromium from disk: reported are
the page's size, the seconds until its strips are drawn, and the time of 20 steps with the
arrow key. Needs Debian's chromium and playwright.

    python benchmarks/viewer_load.py [--minutes 60] [--fps 30] [--faces 1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from ferlab.data import EMOTIONS
from ferlab.hardware import machine_description
from ferlab.video import video_answer
from ferlab.viewer import write_viewer

LANDMARKS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


def face(track: int, rng: random.Random) -> dict:
    weights = [rng.random() for _ in EMOTIONS]
    probabilities = {e: round(w / sum(weights), 4) for e, w in zip(EMOTIONS, weights, strict=True)}
    label = max(probabilities, key=probabilities.get)
    return {"box": [400 + 200 * track, 200, 160, 160], "detector_score": 0.93, "label": label,
            "confidence": probabilities[label], "probabilities": probabilities,
            "landmarks": {name: [450.0, 250.0] for name in LANDMARKS}, "track": track}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--faces", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(0)
    count = int(args.minutes * 60 * args.fps)
    frames = [{"frame": i, "time_s": round(i / args.fps, 3), "faces": [face(t, rng) for t in range(args.faces)]}
              for i in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        page_path = write_viewer(Path(folder) / "long.html", video_answer(frames, 1, args.fps, count, 1280, 720),
                                 "long.mp4", None)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(page_path.as_uri())
            page.wait_for_selector("#timeline .strip", timeout=300_000)
            opened = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(20):
                page.keyboard.press("ArrowRight")
            page.wait_for_function("() => document.getElementById('clock').textContent.endsWith('frame 20')",
                                   timeout=60_000)
            steps = time.perf_counter() - started
            browser.close()
        print(json.dumps({"analyzed_frames": count, "faces_per_frame": args.faces,
                          "page_mb": round(page_path.stat().st_size / 1e6, 1), "strips_after_s": round(opened, 2),
                          "twenty_steps_s": round(steps, 2), "machine": machine_description()}))


if __name__ == "__main__":
    main()
