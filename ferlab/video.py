"""Emotions over time in a video: a per-frame timeline CSV, a plot, an annotated copy."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .data import EMOTIONS
from .predict import PALETTE, Analyzer, draw_annotations


class VideoError(ValueError):
    """The video cannot be read; the message names it and says why."""


def analyze_video(
    path: str | Path, analyzer: Analyzer, out_dir: str | Path, every: int = 1,
    annotate: bool = False, progress: bool = True,
) -> dict:
    """Analyze every ``every``-th frame. Writes ``<stem>.timeline.csv`` (one row per face per
    analyzed frame, with its timestamp), ``<stem>.emotions.png`` and, with ``annotate``,
    ``<stem>.annotated.mp4``. Returns the paths and counts."""
    path, out_dir = Path(path), Path(out_dir)
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
    times, series = [], []  # per analyzed frame: time, probabilities of the largest face (or NaN)
    frame_index = analyzed = 0
    with open(tmp_timeline, "w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["frame", "time_s", "face", "x", "y", "w", "h", "label", "confidence", *EMOTIONS])
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
                for i, record in enumerate(records):
                    table.writerow([frame_index, f"{seconds:.3f}", i, *record["box"], record["label"],
                                    record["confidence"], *(record["probabilities"][e] for e in EMOTIONS)])
                times.append(seconds)
                series.append([records[0]["probabilities"][e] for e in EMOTIONS] if records else [np.nan] * 7)
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
    plot_path = plot_timeline(np.array(times), np.array(series), out_dir / f"{path.stem}.emotions.png", path.name)
    result = {"timeline": str(timeline_path), "plot": str(plot_path), "frames": frame_index,
              "analyzed_frames": analyzed, "fps": fps}
    if writer_video is not None:
        result["annotated"] = str(out_dir / f"{path.stem}.annotated.mp4")
    return result


def _open_writer(path: Path, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (shape[1], shape[0]))
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot write an MP4 video here")
    return writer


def plot_timeline(times: np.ndarray, series: np.ndarray, path: Path, title: str) -> Path:
    """Stacked probabilities of the largest face over time; gaps where no face was found."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    if len(times):
        ax.stackplot(times, np.nan_to_num(series.T), labels=EMOTIONS,
                     colors=[np.array(PALETTE[e]) / 255 for e in EMOTIONS])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability (largest face)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
