"""Frames per second of the web page's live webcam mode, end to end in headless Chromium.

Starts `ferlab serve` (bundled model unless --model), opens the page in Chromium whose fake
webcam plays a 640x480 picture with one face (the bundled portrait on a grey canvas), starts
"live" and counts the frames the page gets analysed after a warm-up. Each frame is encoded
as JPEG in the browser, posted, decoded, detected, classified, tracked, smoothed and drawn;
one is in flight at a time, as the page works. Needs Debian's chromium and playwright.

    python benchmarks/serve_live.py [--seconds 20] [--model PATH] [--backend torch]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import sync_playwright
from serve_load import ferlab_server

from ferlab.classifier import BACKENDS
from ferlab.hardware import machine_description
from ferlab.imageio import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=3)
    parser.add_argument("--model")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="the classifier's engine (ferlab.load_model)")
    args = parser.parse_args()
    portrait = load_image(str(resources.files("ferlab") / "assets" / "astronaut.jpg"))
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:480, 64:576] = portrait[:480]
    with tempfile.TemporaryDirectory() as folder, ferlab_server(args.model, args.backend) as base:
        camera = Path(folder) / "camera.y4m"  # Chromium's fake webcam plays Y4M: a header, then I420 frames
        camera.write_bytes(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n"
                           + b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=flags)
            page = browser.new_page()
            page.goto(base)
            page.click("#camera")
            page.click("#live")
            time.sleep(args.warm_up)
            first, start = page.evaluate("() => window.liveFrames"), time.perf_counter()
            time.sleep(args.seconds)
            last, elapsed = page.evaluate("() => window.liveFrames"), time.perf_counter() - start
            status = page.inner_text("#status")
            headers = page.eval_on_selector_all("#faces h2", "cards => cards.map(card => card.textContent)")
            browser.close()
    print(f"{machine_description()}; web page live mode, 640x480 webcam, one face, model {args.model or 'default'}, "
          f"backend {args.backend}")
    print(f"{last - first} frames in {elapsed:.1f} s after a {args.warm_up:.0f} s warm-up: "
          f"{(last - first) / elapsed:.1f} frames/s (page status: {status!r}; faces, by track: {headers})")


if __name__ == "__main__":
    main()
