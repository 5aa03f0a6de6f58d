"""A long video file analyzed in segments by worker processes, its face tracks stitched across the cuts.

Tracking links each frame to the one before, so `ferlab.video.VideoStream` reads a video in
order, in one process. A file can still be cut into segments analyzed side by side
(`ferlab.parallel`, one CPU each): each segment's worker starts `WARM_UP_S` seconds before
its cut, on frames the segment before also analyzes, so that by the cut its tracks and their
smoothing are under way as they would be in one pass. On those shared frames each of its
tracks is matched to the earlier segment's track whose boxes it overlaps, and takes that
track's id; a track with no match is a new face and takes a new id. A track's held label
(`ferlab.track.LabelHold`) may go back to its first frame, further than any warm-up, so labels
are held again here, in order, once the ids are stitched.

Cameras and streams are read in one process (they cannot be cut), as are short files, where a
worker's start (as long as analyzing about 50 small photos: benchmarks/predict_workers.py)
and the warm-up would cost more than they save. Measured: benchmarks/video_workers.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .predict import Analyzer, hold_label
from .track import LABEL_MARGIN, FaceTracker, LabelHold, box_iou

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .parallel import WorkerPool
    from .video import VideoFrame

# Before its cut a segment reads at least the tracker's longest gap, and five smoothing time
# constants (after which the smoothed probabilities keep under 1% of where they started).
WARM_UP_S = FaceTracker.max_gap_s
SEGMENT_FRAMES = 600  # the most analyzed frames in a segment: frames are handed over (--jsonl) a segment at a time
MIN_SEGMENT_FRAMES = 150  # fewer, and the warm-up and the worker's start cost more than they save
SAME_FACE_IOU = 0.5  # two boxes of one frame this close are the same face, found by both segments


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` up to ``stop`` of a file (``stop`` None: to its end), read from
    ``warm_start`` on; indices are the file's, so ``every`` counts from its first frame."""

    source: str
    warm_start: int
    start: int
    stop: int | None
    every: int
    max_seconds: float | None
    smooth_s: float
    label_margin: float


@dataclass
class SegmentResult:
    """A segment's analyzed frames as (index, time_s, faces), its warm-up included, the index
    after the last frame it read, and why it stopped."""

    frames: list[tuple[int, float, list[dict]]]
    read_end: int
    stopped: str | None


# Above this a "frame rate" is a time base: FFmpeg gives a browser's MediaRecorder WebM 1000
# (its milliseconds), for frames that come about 30 a second, irregularly.
MAX_FRAME_RATE = 480.0


def frame_rate(capture: cv2.VideoCapture) -> float:
    """Frames a second of an open capture (of a variable rate, its mean); 0.0 where not known:
    some cameras and streams, and files that give their time base instead (`MAX_FRAME_RATE`)."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps <= MAX_FRAME_RATE else 0.0


def frame_count(capture: cv2.VideoCapture) -> int | None:
    """How many frames an open capture says its video has; None where it does not know: a
    camera, a stream, or a file without that in its header, such as a browser's MediaRecorder
    WebM, for which FFmpeg answers a huge negative number, or its duration times its time base
    (2,920 for 75 frames in 2.92 s)."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return total if total > 0 and frame_rate(capture) else None


def plan_segments(source: str | Path | int, every: int, max_seconds: float | None, smooth_s: float,
                  workers: int, label_margin: float = LABEL_MARGIN) -> list[Segment]:
    """The segments of ``source`` for up to ``workers`` processes; none where one process is
    better: a camera or stream, a file whose length or frame rate is unknown, or one too short
    for two segments of `MIN_SEGMENT_FRAMES`."""
    if workers < 2 or isinstance(source, int) or not Path(str(source)).is_file():
        return []
    capture = cv2.VideoCapture(str(source))
    fps, total = frame_rate(capture), frame_count(capture)
    capture.release()
    if total is None:  # also where the frame rate is not known (`frame_count`)
        return []
    if max_seconds is not None:
        total = min(total, math.ceil(max_seconds * fps) + 1)
    analyzed = -(-total // every)
    # A whole number of segments per worker, so that none is left alone with the last one.
    count = min(workers * -(-analyzed // (workers * SEGMENT_FRAMES)), analyzed // MIN_SEGMENT_FRAMES)
    if count < 2:
        return []
    warm_frames = math.ceil(max(WARM_UP_S, 5 * smooth_s) * fps / every) * every
    cuts = [every * round(i * analyzed / count) for i in range(count)]
    stops = [*cuts[1:], None]  # the last reads to the end: a file's frame count is an estimate
    return [Segment(str(source), max(0, cut - warm_frames), cut, stop, every, max_seconds, smooth_s, label_margin)
            for cut, stop in zip(cuts, stops, strict=True)]


def analyze_segment(analyzer: Analyzer, segment: Segment) -> SegmentResult:
    """One segment's frames, in a worker process; cut short when the parent stops."""
    from .parallel import advance, stopping
    from .video import VideoStream

    frames = []
    with VideoStream(segment.source, analyzer, segment.every, segment.max_seconds, segment.smooth_s,
                     start=segment.warm_start, stop=segment.stop, label_margin=segment.label_margin) as video:
        for frame in video:
            frames.append((frame.index, frame.time_s, frame.faces))
            if frame.index >= segment.start:  # the warm-up is not progress
                advance()
            if stopping():
                break
        return SegmentResult(frames, video.start + video.frames, video.stopped)


def match_tracks(earlier: list[tuple[int, float, list[dict]]],
                 later: list[tuple[int, float, list[dict]]]) -> dict[int, int]:
    """Which of ``earlier``'s track ids each of ``later``'s tracks continues, judged on the
    frames both analyzed: the pairs of tracks whose boxes overlap in the most frames first,
    each track in one pair at most. Raises `VideoError` where the two disagree on a frame's
    time (the file could not be cut exactly)."""
    from scipy.optimize import linear_sum_assignment

    from .video import VideoError

    by_index = {index: (time_s, faces) for index, time_s, faces in earlier}
    votes: Counter[tuple[int, int]] = Counter()
    for index, time_s, faces in later:
        if index not in by_index:
            continue
        earlier_time, earlier_faces = by_index[index]
        if abs(earlier_time - time_s) > 1e-3:
            raise VideoError(f"frame {index} is at {earlier_time:.3f} s read in order but at {time_s:.3f} s after a "
                             "seek: this file cannot be cut exactly; analyze it with one worker")
        if not faces or not earlier_faces:
            continue
        overlap = box_iou([f["box"] for f in faces], [f["box"] for f in earlier_faces])
        for row, col in zip(*linear_sum_assignment(overlap, maximize=True), strict=True):
            if overlap[row, col] >= SAME_FACE_IOU:
                votes[faces[row]["track"], earlier_faces[col]["track"]] += 1
    matched: dict[int, int] = {}
    for (track, earlier_track), _ in votes.most_common():
        if track not in matched and earlier_track not in matched.values():
            matched[track] = earlier_track
    return matched


@dataclass
class SegmentedVideo:
    """`VideoStream`'s frames of a file, analyzed in ``segments`` by up to ``workers`` processes
    that each build their analyzer with ``build`` (picklable: `ferlab.predict.build_analyzer`
    as a `functools.partial`). Frames come in order, a segment at a time, with the tracks
    stitched across the cuts; with ``decode`` each carries its pixels, read here again (for
    drawing), else an empty array. ``on_progress`` is called about twice a second, while a
    segment is awaited, with the count of frames the workers have analyzed so far."""

    segments: list[Segment]
    build: Callable[[], Analyzer]
    workers: int
    decode: bool = False
    on_progress: Callable[[int], None] | None = None
    frames: int = field(default=0, init=False)
    stopped: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        from .video import open_source

        self.capture, self.name, _ = open_source(self.segments[0].source)
        self.fps = frame_rate(self.capture)
        self.total = frame_count(self.capture)

    def __iter__(self) -> Iterator[VideoFrame]:
        from .parallel import WorkerPool

        self._shared: list[tuple[int, float, list[dict]]] = []  # frames the next segment also analyzed
        self._next_id, self._read = 0, -1  # the next new track's id; the last frame index decoded here
        self._labels = LabelHold(self.segments[0].label_margin)  # held again across the cuts, as in one pass
        with WorkerPool(self.build, min(self.workers, len(self.segments))) as pool:
            futures = [pool.submit(analyze_segment, segment) for segment in self.segments]
            for segment, future in zip(self.segments, futures, strict=True):
                try:
                    result = self._awaited(future, pool)
                except KeyboardInterrupt:  # the segments under way end at once; this one's frames are kept
                    pool.stop.set()
                    result = future.result()
                    result.stopped = "interrupted"
                yield from self._stitched(segment, result)
                self.frames, self.stopped = max(self.frames, result.read_end), result.stopped
                if result.stopped != "end":
                    return

    def _awaited(self, future: Future, pool: WorkerPool) -> SegmentResult:
        while True:
            try:
                return future.result(timeout=0.5)
            except TimeoutError:
                if self.on_progress is not None:
                    self.on_progress(pool.done.value)

    def _stitched(self, segment: Segment, result: SegmentResult) -> Iterator[VideoFrame]:
        """The frames a segment reports, its tracks given the ids of the earlier segment's they
        continue (`match_tracks`) or new ones, and their labels held from the video's start."""
        from .video import VideoFrame  # here: ferlab.video imports this module

        matched = match_tracks(self._shared, [f for f in result.frames if f[0] < segment.start])
        reported = [f for f in result.frames if f[0] >= segment.start]
        ids: dict[int, int] = {}
        for index, time_s, faces in reported:
            for face in faces:
                if face["track"] not in ids:
                    if face["track"] in matched:
                        ids[face["track"]] = matched[face["track"]]
                    else:
                        ids[face["track"]], self._next_id = self._next_id, self._next_id + 1
                face["track"] = ids[face["track"]]
                hold_label(self._labels, face)
            yield VideoFrame(index, time_s, faces, self._decoded(index))
        self._shared = reported

    def _decoded(self, index: int) -> np.ndarray:
        """Frame ``index``'s pixels, read here in order, with ``decode``; else an empty array."""
        if self.decode:
            while self._read < index and self.capture.grab():
                self._read += 1
            ok, bgr = self.capture.retrieve()
            if ok:
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return np.zeros((0, 0, 3), np.uint8)

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> SegmentedVideo:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
