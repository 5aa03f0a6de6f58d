"""How long do an annotated copy and a viewer take from an earlier analysis (`ferlab video
--faces-from`) against analysing the video again?

The clip is `video_tracks.py`'s (the astronaut's portraits drifting about a 1280x720 frame),
``--frames`` long. Untimed first, it is analyzed once for its timeline. Then, alternately,
``--repeats`` times: `ferlab.analyze_video` with the copy (``--annotate``) and the viewer
(``html``), analysing with ``--workers`` processes; and the same from the timeline's faces
(``faces=``, `ferlab.read_faces`), which loads no model. Reported: wall seconds, and whether
the two runs wrote the same timeline.

    python benchmarks/video_faces_from.py [--frames 1800] [--workers 2] [--repeats 2] [--annotate h264]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

from video_tracks import FPS, HEIGHT, WIDTH, portraits, write_clip

from ferlab.hardware import machine_description
from ferlab.predict import build_analyzer
from ferlab.video import analyze_video, read_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--annotate", default="h264", choices=["h264", "webm", "mp4"])
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        write_clip(clip, portraits(args.faces), args.frames)
        first = analyze_video(clip, partial(build_analyzer, None), Path(folder) / "first", progress=False,
                              workers=args.workers)
        for repeat in range(args.repeats):
            for way in ("analysed again", "faces from the timeline"):
                out = Path(folder) / f"{way}-{repeat}"
                started = time.perf_counter()
                if way == "analysed again":
                    result = analyze_video(clip, partial(build_analyzer, None), out, annotate=args.annotate, html=True,
                                           progress=False, workers=args.workers)
                else:
                    faces, _ = read_faces(first["timeline"])
                    result = analyze_video(clip, None, out, annotate=args.annotate, html=True, progress=False,
                                           faces=faces)
                seconds = time.perf_counter() - started
                same = Path(result["timeline"]).read_bytes() == Path(first["timeline"]).read_bytes()
                runs.append({"way": way, "round": repeat, "seconds": round(seconds, 1), "same_timeline": same,
                             "copy_bytes": Path(result["annotated"]).stat().st_size,
                             "viewer_bytes": Path(result["html"]).stat().st_size})
                print(json.dumps(runs[-1]), flush=True)
    print(json.dumps({
        "clip": f"{args.frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {args.faces} portraits",
        "workers": args.workers, "annotate": args.annotate, "machine": machine_description(), "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
