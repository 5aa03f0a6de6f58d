"""Face tracks and labels in video of real faces: a moving camera over real group photos.

Real faces in motion the detector and tracker must follow: each of seven real group photos of
`benchmarks/real_photos.py` (fetched by `fetch_real_photos.sh`; face-api's six and insightface's
`t1.jpg`, 28 faces) is filmed by a virtual camera: a
1280x720 clip at 30 frames/s in which the camera pans across the photo while zooming in from
the photo's whole width to ``--zoom`` of it, with a hand-held shake (a few pixels, smooth),
written as MPEG-4 and read back by `ferlab.VideoStream` as `ferlab video` reads a file. The
faces are real, still and in a real scene; only the motion is made. Each face's box is known
in every frame (the photo's box moved as the camera moved); a face is "in view" while its
whole box is inside the frame.

Counted per clip: frames where a face in view was found (a detection's centre in its box);
id changes, where a face's detection got another track id than its detection before, at
most the tracker's gap (1 s) earlier, and returns, where a face was seen again after longer
(out of view at the frame's edge meanwhile: a new id is then by design); detections in no
face's box, or a second one in a face's; and how often each face in view changed its label
per second of it in view, for each setting of ``--settings``: a smoothing time constant and a
label margin (`ferlab.track.SmoothedTracks`; by default `ferlab video`'s own and "0:0", each
frame's own label). The faces keep one expression throughout, so every label change is noise.

    bash benchmarks/fetch_real_photos.sh real-photos/
    python benchmarks/real_video.py --photos real-photos/ [--seconds 6] [--every 1] [--settings 0:0.4 0:0 0.2:0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from real_photos import centred_in, load_photos

from ferlab.hardware import machine_description
from ferlab.predict import Analyzer
from ferlab.track import LABEL_MARGIN, SMOOTH_S, FaceTracker
from ferlab.video import VideoStream

WIDTH, HEIGHT, FPS = 1280, 720, 30
CLIPPED = {"t1.jpg", *(f"sample{i}.jpg" for i in range(1, 7))}  # the group photos filmed (session 45's first set)
SHAKE_PX = 4  # the hand-held shake's amplitude, in the photo's pixels


def camera_path(photo_w: int, photo_h: int, frames: int, zoom: float, seed: int) -> list[np.ndarray]:
    """One 2x3 affine matrix per frame taking the photo's pixels to the frame's: a window of
    the frame's aspect ratio whose width goes from the photo's (or as much as its height
    allows) to ``zoom`` of that, panning from the photo's left edge to its right edge, shaken."""
    rng = np.random.default_rng(seed)
    phases, speeds = rng.uniform(0, 2 * np.pi, 4), rng.uniform(0.5, 1.5, 4)
    widest = min(photo_w, photo_h * WIDTH / HEIGHT)
    matrices = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        window_w = widest * (1 - (1 - zoom) * t)
        window_h = window_w * HEIGHT / WIDTH
        shake = SHAKE_PX * np.array([np.sin(speeds[0] * i / 3 + phases[0]) + np.sin(speeds[1] * i / 7 + phases[1]),
                                     np.sin(speeds[2] * i / 3 + phases[2]) + np.sin(speeds[3] * i / 7 + phases[3])]) / 2
        left = (photo_w - window_w) * t + shake[0]
        top = (photo_h - window_h) / 2 + shake[1]
        scale = WIDTH / window_w
        matrices.append(np.array([[scale, 0, -left * scale], [0, scale, -top * scale]]))
    return matrices


def write_clip(rgb: np.ndarray, matrices: list[np.ndarray], path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for matrix in matrices:
        writer.write(cv2.warpAffine(bgr, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT))
    writer.release()


def moved_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    scale = matrix[0, 0]
    return np.column_stack([boxes[:, 0] * scale + matrix[0, 2], boxes[:, 1] * scale + matrix[1, 2],
                            boxes[:, 2] * scale, boxes[:, 3] * scale])


def owner(record: dict, boxes: np.ndarray) -> int:
    """The face whose box holds the record's box centre (-1: none)."""
    inside = np.flatnonzero(centred_in([record["box"]], boxes)[0])
    return int(inside[0]) if len(inside) else -1


def label_changes(labels: list[str]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:], strict=False))


def measure_clip(path: Path, truth: np.ndarray, matrices: list[np.ndarray], analyzer: Analyzer,
                 every: int, smooth_s: float, label_margin: float) -> dict:
    in_view = found = false = analyzed = 0
    seen_as: dict[int, list[tuple[float, int]]] = defaultdict(list)  # face -> (time, track) of each detection
    labels: dict[int, list[str]] = defaultdict(list)
    start = time.perf_counter()
    with VideoStream(path, analyzer, every=every, smooth_s=smooth_s, label_margin=label_margin) as video:
        for frame in video:
            analyzed += 1
            boxes = moved_boxes(truth, matrices[frame.index])
            visible = ((boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 0] + boxes[:, 2] <= WIDTH)
                       & (boxes[:, 1] + boxes[:, 3] <= HEIGHT))
            in_view += int(visible.sum())
            seen = set()
            for record in frame.faces:
                face = owner(record, boxes)
                if face < 0 or face in seen:
                    false += 1
                    continue
                seen.add(face)
                seen_as[face].append((frame.time_s, record["track"]))
                if visible[face]:
                    found += 1
                    labels[face].append(record["label"])
    seconds = analyzed * every / FPS
    # A face seen again within the tracker's gap should keep its id; one back after longer gets
    # a new id by design.
    steps = [(later[0] - earlier[0], earlier[1] != later[1])
             for sightings in seen_as.values() for earlier, later in zip(sightings, sightings[1:], strict=False)]
    return {"in_view": in_view, "found": found, "false": false,
            "id_changes": sum(changed for gap, changed in steps if gap <= FaceTracker.max_gap_s),
            "returns": sum(gap > FaceTracker.max_gap_s for gap, _ in steps),
            "label_changes": sum(label_changes(seq) for seq in labels.values()),
            "face_seconds": sum(len(seq) for seq in labels.values()) * every / FPS, "clip_seconds": seconds,
            "ms_per_frame": 1000 * (time.perf_counter() - start) / max(analyzed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="the folder fetch_real_photos.sh filled")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each clip")
    parser.add_argument("--zoom", type=float, default=0.5, help="the window's last width, as a fraction of its first")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--settings", nargs="+", default=[f"{SMOOTH_S}:{LABEL_MARGIN}", "0:0"], metavar="S:M",
                        help="smoothing time constants in seconds and label margins to compare")
    args = parser.parse_args()
    photos = [(photo.name, photo.rgb, photo.faces) for photo in load_photos(args.photos)
              if len(photo.faces) > 1 and photo.name in CLIPPED]
    analyzer = Analyzer()
    frames = round(args.seconds * FPS)
    print(f"# {machine_description()}; {len(photos)} clips of {args.seconds:g} s, {WIDTH}x{HEIGHT} at {FPS} "
          f"frames/s, zoom to {args.zoom:g}, every {args.every}")
    print("| photo | faces | smoothing, label margin | face-frames found (of in view) | id changes (returns after > 1 s) | "
          "false detections | label changes per face-second | ms per analyzed frame |")
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (name, rgb, truth) in enumerate(photos):
            matrices = camera_path(rgb.shape[1], rgb.shape[0], frames, args.zoom, seed)
            clip = Path(tmp) / f"{Path(name).stem}.mp4"
            write_clip(rgb, matrices, clip)
            for setting in args.settings:
                smooth_s, label_margin = (float(v) for v in setting.split(":"))
                row = measure_clip(clip, truth, matrices, analyzer, args.every, smooth_s, label_margin)
                for key, value in row.items():
                    totals[setting][key] += value
                print(f"| {name} | {len(truth)} | {smooth_s:g} s, {label_margin:g} | {row['found']} of {row['in_view']} | "
                      f"{row['id_changes']} ({row['returns']}) | {row['false']} | "
                      f"{row['label_changes'] / max(row['face_seconds'], 1e-9):.2f} | {row['ms_per_frame']:.0f} |",
                      flush=True)
    for setting, row in totals.items():
        smooth_s, label_margin = (float(v) for v in setting.split(":"))
        print(f"| all | {sum(len(t) for *_, t in photos)} | {smooth_s:g} s, {label_margin:g} | "
              f"{row['found']:.0f} of {row['in_view']:.0f} | "
              f"{row['id_changes']:.0f} ({row['returns']:.0f}) | {row['false']:.0f} | "
              f"{row['label_changes'] / max(row['face_seconds'], 1e-9):.2f} | "
              f"{row['ms_per_frame'] / len(photos):.0f} |")


if __name__ == "__main__":
    main()
