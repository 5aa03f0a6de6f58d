"""How much faster are videos with `ferlab video --workers`, and do they give the same timelines?

The clip is `video_tracks.py`'s (the astronaut's portraits drifting about a 1280x720 frame,
one hidden for 0.4 s and one for 2 s), ``--frames`` long. It is analyzed in one process and
with each ``--workers`` count, alternately, ``--repeats`` times; the times are wall times,
the workers' start included. Against one process's timeline, each segmented run reports
how many rows it has and how many of them match a row of the same frame in one process
(boxes overlapping by IoU 0.5 or more), with the same label, and with the same track once
the segmented run's ids are mapped onto one process's (the mapping that agrees on the most
rows, each id mapped once). With ``--videos K``, K copies of the clip are analyzed as one
folder (`ferlab.video.analyze_videos`: whole videos shared among the workers), and each copy's
timeline is compared with one process's.

    python benchmarks/video_workers.py [--frames 1800] [--workers 2] [--repeats 2] [--every 1] [--annotate mp4]
    python benchmarks/video_workers.py --videos 8 --frames 150
    python benchmarks/video_workers.py --clip h264.mp4   # a video of your own instead (H.264, HEVC, ...)
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from video_tracks import FPS, HEIGHT, WIDTH, portraits, write_clip

from ferlab.data import EMOTIONS
from ferlab.hardware import machine_description
from ferlab.predict import build_analyzer
from ferlab.track import box_iou
from ferlab.video import analyze_videos


def timeline(path: str) -> dict[int, list[dict]]:
    rows: dict[int, list[dict]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(int(row["frame"]), []).append(row)
    return rows


def agreement(reference: dict[int, list[dict]], other: dict[int, list[dict]]) -> dict:
    """How many of ``other``'s rows match a reference row of their frame, by box, label and track."""
    pairs = []  # (reference row, other row) of the same face
    for frame, rows in other.items():
        mine = reference.get(frame, [])
        if not mine:
            continue
        overlap = box_iou([[int(r[k]) for k in "xywh"] for r in mine], [[int(r[k]) for k in "xywh"] for r in rows])
        for i, j in zip(*np.nonzero(overlap >= 0.5), strict=True):
            pairs.append((mine[i], rows[j]))
    votes = Counter((b["track"], a["track"]) for a, b in pairs)
    mapping: dict[str, str] = {}
    for (track, reference_track), _ in votes.most_common():
        if track not in mapping and reference_track not in mapping.values():
            mapping[track] = reference_track
    return {
        "rows": sum(map(len, other.values())),
        "rows_in_one_process": sum(map(len, reference.values())),
        "same_face": len(pairs),
        "same_label": sum(a["label"] == b["label"] for a, b in pairs),
        "same_track": sum(mapping.get(b["track"]) == a["track"] for a, b in pairs),
        "max_probability_difference": round(max((abs(float(a[e]) - float(b[e])) for a, b in pairs
                                                 for e in EMOTIONS), default=0.0), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--annotate", choices=["mp4", "webm"], help="also write the annotated copy (timed with the rest)")
    parser.add_argument("--videos", type=int, default=1, help="copies of the clip, analyzed as a folder")
    parser.add_argument("--clip", type=Path, help="a video of your own instead of the portraits' clip")
    args = parser.parse_args()

    build = partial(build_analyzer, "default")
    times: dict[int, list[float]] = {}
    checks = {}
    with tempfile.TemporaryDirectory() as tmp:
        suffix = args.clip.suffix if args.clip else ".mp4"
        clips = [Path(tmp) / f"faces{i}{suffix}" for i in range(args.videos)]
        if args.clip:
            clips[0].write_bytes(args.clip.read_bytes())
            capture = cv2.VideoCapture(str(args.clip))
            args.frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
        else:
            write_clip(clips[0], portraits(args.faces), args.frames)
        for clip in clips[1:]:
            clip.write_bytes(clips[0].read_bytes())
        timelines = {}
        for _ in range(args.repeats):
            for workers in [1, *args.workers]:
                start = time.perf_counter()
                results = list(analyze_videos(clips, build, Path(tmp) / f"out{workers}", workers=workers,
                                              progress=False, every=args.every, annotate=args.annotate or False))
                times.setdefault(workers, []).append(time.perf_counter() - start)
                timelines[workers] = [timeline(result["timeline"]) for result in results]
                checks[workers] = {"tracks": [len(result["tracks"]) for result in results],
                                   "frames_read": sum(result["frames"] for result in results)}
        for workers in args.workers:
            per_clip = [agreement(one, other) for one, other in zip(timelines[1], timelines[workers], strict=True)]
            for key in per_clip[0]:
                values = [clip[key] for clip in per_clip]
                checks[workers][key] = max(values) if key == "max_probability_difference" else sum(values)
    analyzed = args.videos * -(-args.frames // args.every)
    report = {
        "clip": (f"{args.clip}: {args.frames} frames, every {args.every}" if args.clip else
                 f"{args.frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {args.faces} portraits, every {args.every}"),
        "videos": args.videos,
        "annotated_copy": args.annotate,
        "machine": machine_description(),
        "seconds": {w: [round(s, 1) for s in runs] for w, runs in times.items()},
        "analyzed_frames_per_second": {w: [round(analyzed / s, 1) for s in runs] for w, runs in times.items()},
        "tracks_in_one_process": checks[1]["tracks"],
        "segmented_against_one_process": {w: checks[w] for w in args.workers},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
