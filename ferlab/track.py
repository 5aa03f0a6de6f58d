"""Face tracks in a video: each person keeps one id from frame to frame.

Faces are detected anew in every analyzed frame, largest first, so a face's index in one
frame says nothing about who it is in the next. A tracker links each new face to the live
track whose last box overlaps it most, solved for all faces of a frame at once by the
Hungarian algorithm (SciPy's `linear_sum_assignment`), as SORT does. The overlap is C-BIoU's
buffered intersection over union (Yang et al. 2023): boxes widened by half their size on
each side still overlap when the detector missed a moving face for a few frames
(`benchmarks/video_tracks.py` counts the tracks this keeps). The tracking libraries that do
more do not install beside ferlab's stack: norfair pins NumPy below 2, and Roboflow's
trackers needs the full opencv-python, which clashes with the headless OpenCV ferlab uses.

A track also lets its probabilities be smoothed over time (`TrackSmoother`) and its label be
held until another expression clearly leads (`LabelHold`): a face's label then stops
flickering from frame to frame while its expression holds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# By default a face track's probabilities are each frame's own (no time constant), and its
# label changes only when another expression's probability leads it by more than LABEL_MARGIN
# (`LabelHold`). Chosen on PublicTest by `benchmarks/video_smoothing.py`: of the settings that
# label as many frames right as no smoothing and at most a point fewer just after a change,
# the one with the fewest label changes (a quarter of no smoothing's or less; reports/benchmarks.md).
SMOOTH_S = 0.0
LABEL_MARGIN = 0.4


def box_iou(a: np.ndarray, b: np.ndarray, buffer: float = 0.0) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4),
    boxes as x, y, width, height: an (N, M) array. ``buffer`` first widens each box on every
    side by that fraction of its size (C-BIoU, Yang et al. 2023): at 0.5, a face that moved
    sideways by up to its own width keeps an overlap of 0.3 with where it was."""

    def widened(boxes) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        return np.concatenate([boxes[:, :2] - buffer * boxes[:, 2:], boxes[:, 2:] * (1 + 2 * buffer)], axis=1)

    a, b = widened(a), widened(b)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    overlap = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


@dataclass
class FaceTracker:
    """Give each face box a track id: the id of the face it continues, or a new one.

    ``min_iou``: the least buffered overlap with a track's last box to continue it (SORT's 0.3).
    ``buffer``: how much each box is widened on every side first, as a fraction of its size.
    ``max_gap_s``: how long a track may go unseen (a turned head, a missed detection) and
    still be continued, in seconds of video so that it does not depend on ``--every``. A
    track seen in the frame before can always be continued, however long ago that was, so
    that sparse frames (a large ``--every``, a slow server's live stream) keep their tracks.
    """

    min_iou: float = 0.3
    buffer: float = 0.5
    max_gap_s: float = 1.0
    _last_box: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _last_seen: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _next_id: int = field(default=0, init=False, repr=False)
    _in_last_frame: set[int] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.min_iou <= 1:
            raise ValueError(f"min_iou must be in (0, 1], not {self.min_iou}")
        if self.buffer < 0:
            raise ValueError(f"buffer must be 0 or more (a fraction of the box's size), not {self.buffer}")
        if self.max_gap_s < 0:
            raise ValueError(f"max_gap_s must be 0 or more seconds, not {self.max_gap_s}")

    def update(self, boxes: Sequence[Sequence[float]] | np.ndarray, time_s: float) -> list[int]:
        """Track ids for the boxes (x, y, w, h) of one frame at ``time_s``, in their order."""
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        gone = [t for t, seen in self._last_seen.items() if time_s - seen > self.max_gap_s and t not in self._in_last_frame]
        for track in gone:
            del self._last_box[track], self._last_seen[track]
        ids: list[int | None] = [None] * len(boxes)
        live = list(self._last_box)
        if live and len(boxes):
            from scipy.optimize import linear_sum_assignment  # here: SciPy's import costs `import ferlab` 0.5 s

            overlap = box_iou(np.stack([self._last_box[t] for t in live]), boxes, self.buffer)
            for row, col in zip(*linear_sum_assignment(overlap, maximize=True), strict=True):
                if overlap[row, col] >= self.min_iou:
                    ids[col] = live[row]
        for index, box in enumerate(boxes):
            if ids[index] is None:
                ids[index], self._next_id = self._next_id, self._next_id + 1
            self._last_box[ids[index]], self._last_seen[ids[index]] = box, time_s
        self._in_last_frame = set(ids)
        return ids

    def live_tracks(self) -> set[int]:
        """The tracks a later frame may still continue."""
        return set(self._last_box)

    def last_boxes(self) -> list[tuple[float, float, float, float]]:
        """The last box of each track the next frame may still continue."""
        return [tuple(float(v) for v in box) for box in self._last_box.values()]


@dataclass
class TrackSmoother:
    """An exponential moving average of each track's probabilities over time.

    ``time_constant_s``: after this many seconds an expression's change has moved the
    average 63% of the way (1 - 1/e); 0 turns smoothing off. The weight of each new frame
    follows the time since the track's last one, so the smoothing does not depend on the
    frame rate or on ``--every``, and a face back after a gap counts more.
    """

    time_constant_s: float
    _last: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.time_constant_s < 0:
            raise ValueError(f"the smoothing time constant must be 0 or more seconds, not {self.time_constant_s}")

    def update(self, track: int, probabilities: np.ndarray, time_s: float) -> np.ndarray:
        """The smoothed probabilities of ``track`` once its frame at ``time_s`` is counted."""
        probabilities = np.asarray(probabilities, dtype=float)
        previous = self._last.get(track)
        if previous is not None and self.time_constant_s > 0:
            seen, average = previous
            weight = 1 - math.exp(-max(time_s - seen, 0.0) / self.time_constant_s)
            probabilities = average + weight * (probabilities - average)
        self._last[track] = (time_s, probabilities)
        # Forget tracks not seen for ten time constants: their average no longer counts.
        for stale in [t for t, (seen, _) in self._last.items() if time_s - seen > 10 * self.time_constant_s]:
            del self._last[stale]
        return probabilities


@dataclass
class LabelHold:
    """Each track's label, kept until another expression's probability leads it by more than
    ``margin`` (hysteresis); 0 gives each frame's top expression. Where the classifier hesitates
    between two expressions the label stays, and a clear change is taken at once, without the
    delay of a longer time constant (`benchmarks/video_smoothing.py`)."""

    margin: float
    _labels: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ValueError(f"the label margin must be in [0, 1) (a difference of probabilities), not {self.margin}")

    def update(self, track: int, probabilities: np.ndarray) -> int:
        """The index of ``track``'s label once ``probabilities`` (its frame's, smoothed) are counted."""
        top = int(np.argmax(probabilities))
        held = self._labels.get(track, top)
        if probabilities[top] - probabilities[held] > self.margin:
            held = top
        self._labels[track] = held
        return held

    def forget(self, live: set[int]) -> None:
        """Drop the tracks not in ``live``: ended tracks are never continued."""
        for track in set(self._labels) - live:
            del self._labels[track]


class SmoothedTracks:
    """What the analysis of a video keeps from frame to frame: a `FaceTracker` giving each
    face its track id, a `TrackSmoother` over ``smooth_s`` seconds for each track's
    probabilities and a `LabelHold` of each track's label by ``label_margin``. Used by
    `ferlab.VideoStream` and by the web service's live streams."""

    def __init__(self, smooth_s: float = SMOOTH_S, label_margin: float = LABEL_MARGIN) -> None:
        self.smoother = TrackSmoother(smooth_s)
        self.labels = LabelHold(label_margin)
        self.tracker = FaceTracker()
        self.full_search_s: float | None = None  # when a frame was last searched whole (`Analyzer.analyze_frame`)
        self.lock = threading.Lock()  # held by whoever analyzes a frame of these tracks (the web service)

    def update(self, boxes: Sequence[Sequence[float]] | np.ndarray, probabilities: np.ndarray,
               time_s: float) -> tuple[list[int], list[np.ndarray]]:
        """The track ids of one frame's faces at ``time_s`` and their smoothed probabilities;
        their labels are then held by ``labels`` (`ferlab.predict.hold_label`)."""
        tracks = self.tracker.update(boxes, time_s)
        smoothed = [self.smoother.update(track, p, time_s) for track, p in zip(tracks, probabilities, strict=True)]
        self.labels.forget(self.tracker.live_tracks())
        return tracks, smoothed
