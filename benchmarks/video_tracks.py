"""Do face tracks keep each person's id in a video where the faces' order by size changes?

A clip is made from the bundled astronaut portrait (a real photo; its head and shoulders,
as is, mirrored, and mirrored and darker): ``--faces`` copies drift about their own part of
a 1280x720 frame while their sizes swell and shrink out of step, so the detector's
largest-first order, the timeline's ``face`` column, keeps changing. Face 0 is hidden for
0.4 s (a turned head: its track should continue) and face 1 for 2 s (longer than the
tracker's 1 s gap: a new track is expected). `ferlab video`'s own code analyzes the clip;
each timeline row is given to the face whose known box centre is nearest. Counted per face:
how often its ``track`` and its ``face`` index change between consecutive detections.

    python benchmarks/video_tracks.py [--faces 3] [--every 1] [--frames 300] [--annotate mp4|webm]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.detect import DEFAULT_DETECTOR
from ferlab.hardware import machine_description
from ferlab.imageio import load_image
from ferlab.predict import Analyzer
from ferlab.track import FaceTracker
from ferlab.video import analyze_video

ASTRONAUT = Path(__file__).resolve().parents[1] / "ferlab" / "assets" / "astronaut.jpg"
WIDTH, HEIGHT, FPS = 1280, 720, 30
MIN_SIDE, MAX_SIDE = 200, 320  # each portrait's size swings between these (pixels)
HIDDEN = {0: (100, 112), 1: (160, 220)}  # face -> frames [start, stop) when it is not shown


def portraits(count: int) -> list[np.ndarray]:
    """Head and shoulders of the astronaut (her face is about 40% of the crop's width), in
    ``count`` variants that differ to the eye (as is, mirrored, mirrored and darker)."""
    gray = cv2.cvtColor(load_image(ASTRONAUT), cv2.COLOR_RGB2GRAY)[0:260, 95:355]
    variants = [gray, gray[:, ::-1], (gray[:, ::-1] * 0.7).astype(np.uint8)]
    return [np.ascontiguousarray(variants[i % len(variants)]) for i in range(count)]


def face_boxes(frame: int, count: int) -> list[tuple[int, int, int] | None]:
    """Centre x, centre y and side of each face in a frame (None while it is hidden)."""
    lane = WIDTH / count
    boxes = []
    for i in range(count):
        start, stop = HIDDEN.get(i, (0, 0))
        if start <= frame < stop:
            boxes.append(None)
            continue
        phase = 2 * np.pi * i / count
        side = int((MIN_SIDE + MAX_SIDE) / 2 + (MAX_SIDE - MIN_SIDE) / 2 * np.sin(2 * np.pi * frame / 90 + phase))
        x = int(lane * (i + 0.5) + 0.35 * (lane - side) / 2 * np.sin(2 * np.pi * frame / 140 + phase))
        y = int(HEIGHT / 2 + 0.5 * (HEIGHT - side) / 2 * np.cos(2 * np.pi * frame / 110 + phase))
        boxes.append((x, y, side))
    return boxes


def write_clip(path: Path, faces: list[np.ndarray], frames: int) -> list[list]:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    truth = []
    for frame in range(frames):
        canvas = np.full((HEIGHT, WIDTH), 127, np.uint8)
        boxes = face_boxes(frame, len(faces))
        for face, box in zip(faces, boxes, strict=True):
            if box is not None:
                x, y, side = box
                top, left = y - side // 2, x - side // 2
                canvas[top:top + side, left:left + side] = cv2.resize(face, (side, side))
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
        truth.append(boxes)
    writer.release()
    return truth


def changes(values: list) -> int:
    return sum(a != b for a, b in zip(values, values[1:], strict=False))


def nearest_face(row: dict, truth: list[list]) -> int | None:
    """The shown face whose centre is nearest the row's box centre, within half its side."""
    x, y = int(row["x"]) + int(row["w"]) / 2, int(row["y"]) + int(row["h"]) / 2
    near = [(np.hypot(x - bx, y - by), i) for i, box in enumerate(truth[int(row["frame"])]) if box is not None
            for bx, by, side in [box] if np.hypot(x - bx, y - by) < side / 2]
    return min(near)[1] if near else None


def replay(rows: list[dict], tracker: FaceTracker, frames: int, every: int) -> list[int]:
    """Track ids a tracker gives the timeline's boxes, frame by frame, in the rows' order."""
    boxes_by_frame: dict[int, list] = {}
    for row in rows:
        boxes_by_frame.setdefault(int(row["frame"]), []).append([int(row[k]) for k in "xywh"])
    ids = []
    for frame in range(0, frames, every):
        ids += tracker.update(boxes_by_frame.get(frame, []), frame / FPS)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--every", type=int, default=1, help="analyze every k-th frame, as `ferlab video --every`")
    parser.add_argument("--annotate", choices=["mp4", "webm"], help="also write the annotated copy (timed with the rest)")
    args = parser.parse_args()

    faces = portraits(args.faces)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "faces.mp4"
        truth = write_clip(clip, faces, args.frames)
        start = time.perf_counter()
        result = analyze_video(clip, Analyzer(load_model(args.model), args.detector), Path(tmp) / "out",
                               every=args.every, annotate=args.annotate or False, progress=False)
        seconds = time.perf_counter() - start
        with open(result["timeline"]) as handle:
            rows = list(csv.DictReader(handle))

    owner = [nearest_face(row, truth) for row in rows]
    analyzed = result["analyzed_frames"]
    shown = [sum(truth[f][i] is not None for f in range(0, args.frames, args.every)) for i in range(args.faces)]
    # The same boxes through fresh trackers: timed alone, and with plain IoU (no buffer) for comparison.
    tracker = FaceTracker()
    start = time.perf_counter()
    replayed = replay(rows, tracker, args.frames, args.every)
    tracking_ms = 1000 * (time.perf_counter() - start) / analyzed
    assert replayed == [int(row["track"]) for row in rows], "the replay differs from ferlab video's own tracks"
    unbuffered = replay(rows, FaceTracker(buffer=0.0), args.frames, args.every)

    def column(values: list, face: int) -> list:
        return [value for value, who in zip(values, owner, strict=True) if who == face]

    report = {
        "clip": f"{args.frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {args.faces} portraits, every {args.every}",
        "annotated_copy": args.annotate,
        "machine": machine_description(),
        "detector": args.detector,
        "tracker": f"buffer {tracker.buffer}, min_iou {tracker.min_iou}, max_gap_s {tracker.max_gap_s}",
        "faces": {
            i: {"found_in": f"{len(column(rows, i))} of {shown[i]} analyzed frames where shown",
                "hidden_frames": list(HIDDEN.get(i, ())),
                "tracks": sorted(set(column(replayed, i))),
                "track_changes": changes(column(replayed, i)),
                "track_changes_with_plain_iou": changes(column(unbuffered, i)),
                "face_index_changes": changes(column([row["face"] for row in rows], i))}
            for i in range(args.faces)
        },
        "rows_near_no_face": owner.count(None),
        "tracks_in_timeline": len(result["tracks"]),
        "ms_per_analyzed_frame": round(1000 * seconds / analyzed, 1),
        "tracking_ms_per_analyzed_frame": round(tracking_ms, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
