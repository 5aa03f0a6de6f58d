"""Emotions over time in a video: a per-frame timeline CSV, a plot per face track, an annotated copy."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .data import EMOTIONS
from .predict import PALETTE, Analyzer, draw_annotations
from .track import FaceTracker


class VideoError(ValueError):
    """The video cannot be read; the message names it and says why."""


def analyze_video(
    path: str | Path, analyzer: Analyzer | None = None, out_dir: str | Path = "ferlab-video", every: int = 1,
    annotate: bool = False, progress: bool = True,
) -> dict:
    """Analyze every ``every``-th frame with ``analyzer`` (default: the bundled model and
    detector) into ``out_dir``. Writes ``<stem>.timeline.csv`` (one row per face per
    analyzed frame, with its timestamp and its track: the same id for the same person from
    frame to frame), ``<stem>.emotions.png`` (the longest tracks over time) and, with
    ``annotate``, ``<stem>.annotated.mp4``. Returns the paths, counts and a summary of each
    track (`summarize_tracks`)."""
    path, out_dir = Path(path), Path(out_dir)
    analyzer = analyzer or Analyzer()
    if every < 1:
        raise ValueError(f"every must be 1 or more (analyze every k-th frame), not {every}")
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: not a video OpenCV can open (corrupt, truncated or unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    out_dir.mkdir(parents=True, exist_ok=True)
    timeline_path = out_dir / f"{path.stem}.timeline.csv"
    tmp_timeline = timeline_path.with_suffix(".csv.tmp")
    writer_video = None
    times = []  # of each analyzed frame
    tracker = FaceTracker()
    tracks: dict[int, dict[int, list[float]]] = {}  # track -> {analyzed frame index: probabilities}
    frame_index = analyzed = 0
    with open(tmp_timeline, "w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["frame", "time_s", "face", "track", "x", "y", "w", "h", "label", "confidence", *EMOTIONS])
        bar = tqdm(total=total, unit="frame", disable=not progress)
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if frame_index % every == 0:
                # Timestamps come from the container, so variable frame rates stay right.
                seconds = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                faces, crops = analyzer.faces(rgb)
                records = analyzer.records(faces, analyzer.model.predict_proba(crops))
                track_ids = tracker.update([record["box"] for record in records], seconds)
                for i, (record, track) in enumerate(zip(records, track_ids, strict=True)):
                    record["track"] = track
                    probabilities = [record["probabilities"][e] for e in EMOTIONS]
                    table.writerow([frame_index, f"{seconds:.3f}", i, track, *record["box"], record["label"],
                                    record["confidence"], *probabilities])
                    tracks.setdefault(track, {})[analyzed] = probabilities
                times.append(seconds)
                analyzed += 1
                if annotate:
                    if writer_video is None:
                        writer_video = _open_writer(out_dir / f"{path.stem}.annotated.mp4", fps / every, bgr.shape)
                    writer_video.write(cv2.cvtColor(draw_annotations(rgb, records), cv2.COLOR_RGB2BGR))
            frame_index += 1
            bar.update(1)
        bar.close()
    capture.release()
    if writer_video is not None:
        writer_video.release()
    if frame_index == 0:
        tmp_timeline.unlink()
        raise VideoError(f"{path}: the video has no readable frames")
    os.replace(tmp_timeline, timeline_path)
    plot_path = plot_timeline(np.array(times), tracks, out_dir / f"{path.stem}.emotions.png", path.name)
    result = {"timeline": str(timeline_path), "plot": str(plot_path), "frames": frame_index,
              "analyzed_frames": analyzed, "fps": fps, "tracks": summarize_tracks(times, tracks)}
    if writer_video is not None:
        result["annotated"] = str(out_dir / f"{path.stem}.annotated.mp4")
    return result


def summarize_tracks(times: list[float], tracks: dict[int, dict[int, list[float]]]) -> list[dict]:
    """Per track, longest first: when it was seen, in how many analyzed frames, and its
    probabilities averaged over those frames with the label they give (JSON-safe)."""
    summaries = []
    for track in sorted(tracks, key=lambda t: (-len(tracks[t]), t)):
        seen = sorted(tracks[track])
        mean = np.mean([tracks[track][index] for index in seen], axis=0)
        summaries.append({
            "track": track, "first_s": round(times[seen[0]], 3), "last_s": round(times[seen[-1]], 3),
            "analyzed_frames": len(seen), "label": EMOTIONS[int(np.argmax(mean))],
            "probabilities": {e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)},
        })
    return summaries


def _open_writer(path: Path, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (shape[1], shape[0]))
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot write an MP4 video here")
    return writer


def plot_timeline(times: np.ndarray, tracks: dict[int, dict[int, list[float]]], path: Path, title: str,
                  max_panels: int = 4) -> Path:
    """Stacked probabilities over time, one panel per face track (the ``max_panels`` seen in
    the most frames), with gaps where that face was not found."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = sorted(tracks, key=lambda track: (-len(tracks[track]), track))[:max_panels]
    fig, axes = plt.subplots(max(1, len(longest)), 1, figsize=(9, 1.2 + 2.2 * max(1, len(longest))),
                             sharex=True, squeeze=False)
    colours = [np.array(PALETTE[e]) / 255 for e in EMOTIONS]
    for ax, track in zip(axes[:, 0], longest, strict=False):
        series = np.zeros((len(times), len(EMOTIONS)))
        for index, probabilities in tracks[track].items():
            series[index] = probabilities
        ax.stackplot(times, series.T, labels=EMOTIONS, colors=colours)
        ax.set_ylabel(f"face track {track}")
        ax.set_title(f"track {track}: found in {len(tracks[track])} of {len(times)} analyzed frames", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylim(0, 1)
    if longest:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8)
    else:
        axes[0, 0].set_title("no face found", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    if len(times) > 1:  # the video's span, also where no face was found
        axes[-1, 0].set_xlim(times[0], times[-1])
    fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
