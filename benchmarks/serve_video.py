"""How long does the web service take to answer a video upload in each format?

The clip is `video_tracks.py`'s (the astronaut's portraits drifting about a 1280x720 frame),
``--frames`` long. It is posted to ``POST /v1/analyze-video`` of an app with the bundled model
(FastAPI's in-process test client: the server's work without the network) once per format
and round, the formats in turn, ``--repeats`` rounds: JSON (the page's answer), CSV (the
timeline), and the annotated copies (h264, webm, mp4) analysed again. ``drawn-h264``,
``drawn-webm``, ``drawn-mp4``: the copy the page's "Save annotated video" and "Play a copy" ask
for, ``POST /v1/draw-video`` with the clip and the last JSON answer (one is asked for, untimed,
if none came yet), drawn without a second analysis. Reported: wall seconds and the answer's size.

    python benchmarks/serve_video.py [--frames 1800] [--workers 2] [--repeats 2] [--formats json csv webm mp4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

from fastapi.testclient import TestClient
from video_tracks import FPS, HEIGHT, WIDTH, portraits, write_clip

from ferlab.hardware import machine_description
from ferlab.predict import build_analyzer
from ferlab.serve import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="ferlab serve --workers")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--formats", nargs="+", default=["json", "csv", "webm", "mp4"])
    args = parser.parse_args()

    build = partial(build_analyzer, None)
    client = TestClient(create_app(build(), video_workers=args.workers, build=build))
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        write_clip(clip, portraits(args.faces), args.frames)
        upload = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
        answer = None  # the last JSON answer, which /v1/draw-video draws
        for repeat in range(args.repeats):
            for answer_format in args.formats:
                if answer_format.startswith("drawn-") and answer is None:
                    answer = client.post("/v1/analyze-video", files=upload).content
                started = time.perf_counter()
                if answer_format.startswith("drawn-"):
                    response = client.post("/v1/draw-video", params={"format": answer_format.removeprefix("drawn-")},
                                           files={**upload, "result": ("result.json", answer, "application/json")})
                else:
                    response = client.post("/v1/analyze-video", params={"format": answer_format}, files=upload)
                seconds = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(f"{answer_format}: {response.status_code} {response.text[:300]}")
                if answer_format == "json":
                    answer = response.content
                runs.append({"format": answer_format, "round": repeat, "seconds": round(seconds, 1),
                             "bytes": len(response.content)})
                print(json.dumps(runs[-1]), flush=True)
    print(json.dumps({
        "clip": f"{args.frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {args.faces} portraits",
        "workers": args.workers, "machine": machine_description(), "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
