"""Emotions over time in a video file, a camera or a stream: a per-frame timeline CSV, a plot
per face track, an annotated copy, an offline viewer (`ferlab.viewer`); or each of them again
from the faces an earlier analysis found (`read_faces`), without analysing again."""

from __future__ import annotations

import bisect
import csv
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

import cv2
import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from tqdm import tqdm

from .atomic import atomic_write, atomic_write_text, temporary_beside
from .data import EMOTIONS
from .parallel import usable_cpus
from .predict import (
    PALETTE,
    VIDEO_SUFFIXES,
    Analyzer,
    AnalyzerSource,
    analyzer_builder,
    built_analyzer,
    draw_annotations,
    expand_inputs,
    output_names,
)
from .soundtrack import SoundError, add_sound
from .subtitles import SUBTITLE_FORMATS, track_cues, write_subtitles
from .track import LABEL_MARGIN, SMOOTH_S, LabelHold, SmoothedTracks, TrackSmoother
from .video_segments import SegmentedVideo, frame_count, frame_rate, plan_segments
from .viewer import write_viewer

# The annotated copy's formats: the codec for each, and the file's suffix. OpenCV's wheels have
# no H.264 encoder, so its MP4 ("mp4") holds MPEG-4 Part 2, which VLC, QuickTime and Windows
# play but web browsers do not; its WebM holds VP8, which browsers play (tests/test_video.py
# plays one in Chromium), but takes about 30 ms more a 1280x720 frame to write
# (benchmarks/video_tracks.py). "h264" is an MP4 that plays everywhere, browsers included,
# written by PyAV's libx264 (an extra: its wheels bundle x264, GPL).
ANNOTATED_CODECS = {"mp4": "mp4v", "webm": "VP80", "h264": "libx264"}
ANNOTATED_SUFFIXES = {"mp4": "mp4", "webm": "webm", "h264": "mp4"}
COPY_FPS = 30.0  # an annotated copy's rate where the video's is not known
MAX_GAP_S = 60.0  # a longer step between two frames' times is a jump in a stream's clock, not a pause


# The faces of an earlier analysis (`read_faces`): what drawing them needs of each record, checked.
Emotion = Literal[EMOTIONS]
Share = Annotated[float, Field(ge=0, le=1)]
Coordinate = Annotated[int | float, Field(ge=-100_000, le=100_000)]  # far beyond any video's pixels


class FoundFace(BaseModel):
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate]
    label: Emotion
    confidence: Share
    probabilities: dict[Emotion, Share]
    track: int = Field(ge=0)
    landmarks: dict[str, tuple[Coordinate, Coordinate]] | None = Field(None, max_length=16)

    @field_validator("probabilities")
    @classmethod
    def all_seven(cls, probabilities: dict[str, float]) -> dict[str, float]:
        if len(probabilities) != len(EMOTIONS):
            raise ValueError(f"give all seven: {', '.join(EMOTIONS)}")
        return probabilities


class FoundFrame(BaseModel):
    frame: int = Field(ge=0)
    time_s: float | None = Field(None, ge=0)
    faces: list[FoundFace] = Field(max_length=256)


class VideoAnswer(BaseModel):
    """Of the web service's answer for a video (`video_answer`), what drawing it needs."""

    every: int = Field(ge=1)
    frames: list[FoundFrame]
    live: bool = False  # a live session's, saved by the web page: its frames numbered as analysed

    @model_validator(mode="after")
    def timed_if_live(self) -> VideoAnswer:
        if self.live and any(frame.time_s is None for frame in self.frames):
            raise ValueError("a live session's frames are drawn by their time_s: give each its own")
        return self


# A live session's faces are drawn on the frames of its recording that come at most this long
# after the analysed frame they were found in (the page analyses about 25 frames a second).
LIVE_HOLD_S = 0.5


class VideoError(ValueError):
    """The video cannot be read; the message names it and says why."""


@dataclass
class VideoFrame:
    """One analyzed frame: its index in the source, its time, and a record per face
    (`ferlab.analyze`'s, plus ``"track"``: the same id for the same person across frames)."""

    index: int
    time_s: float
    faces: list[dict]
    rgb: np.ndarray = field(repr=False)


def check_reading(every: int, max_seconds: float | None, smooth_s: float, label_margin: float = LABEL_MARGIN) -> None:
    """Refuse reading options that make no sense, saying why."""
    if every < 1:
        raise ValueError(f"every must be 1 or more (analyze every k-th frame), not {every}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, not {max_seconds}")
    TrackSmoother(smooth_s)  # refuses a negative time constant
    LabelHold(label_margin)  # and a margin outside [0, 1)


class VideoStream:
    """The faces in every ``every``-th frame of a video file, a camera or a stream URL, tracked
    from frame to frame; iterate over it for `VideoFrame`s as they are analyzed::

        with ferlab.VideoStream(0, max_seconds=60) as video:  # the first webcam, for a minute
            for frame in video:
                print(frame.time_s, [(face["track"], face["label"]) for face in frame.faces])

    ``source``: a file, a camera index (``0`` or ``"0"``; an existing file of that name wins)
    or a URL OpenCV's FFmpeg reads (``rtsp://``, ``http://``, ...). ``smooth_s``: a time
    constant in seconds over which each track's probabilities (and so its label) are
    smoothed (`TrackSmoother`; 0 leaves each frame's own); ``label_margin``: how far another
    expression's probability must lead a track's label to take its place (`LabelHold`; 0: the
    most probable expression of each frame). ``start`` and ``stop``: a file's
    frames from ``start`` up to, not including, ``stop`` (frame indices stay the file's, so
    ``every`` counts from its first frame). Once iteration ends, ``frames`` counts the frames
    read and ``stopped`` says why: "end" or "max_seconds".

    ``faces``: the faces an earlier analysis found, by frame index (`read_faces`, with the
    ``every`` it had): each frame gets its own instead of being analyzed, and no model is loaded.
    """

    def __init__(self, source: str | Path | int, analyzer: Analyzer | None = None, every: int = 1,
                 max_seconds: float | None = None, smooth_s: float = SMOOTH_S, start: int = 0,
                 stop: int | None = None, faces: dict[int, list[dict]] | None = None,
                 label_margin: float = LABEL_MARGIN) -> None:
        check_reading(every, max_seconds, smooth_s, label_margin)  # first: a bad value leaves no capture open
        if faces is not None:
            check_faces(source, faces, every)
        self.source, self.every, self.max_seconds, self.start, self.stop = source, every, max_seconds, start, stop
        self.faces = faces
        self.tracks = SmoothedTracks(smooth_s, label_margin)
        # first: a model that fails to load leaves no capture open
        self.analyzer = None if faces is not None else analyzer or Analyzer()
        self.capture, self.name, self.is_camera = open_source(source)
        self.fps = frame_rate(self.capture)  # 0.0: not known
        self.total = frame_count(self.capture)  # None: live, or not known
        if start:
            self._seek(start)
        self.frames = 0
        self.stopped: str | None = None

    def _seek(self, frame: int) -> None:
        """Go to ``frame``; where FFmpeg cannot land on it exactly, read up to it instead."""
        if not self.capture.set(cv2.CAP_PROP_POS_FRAMES, frame) or int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) != frame:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            for _ in range(frame):
                if not self.capture.grab():
                    break

    def __iter__(self) -> Iterator[VideoFrame]:
        started = time.monotonic()
        while (self.stop is None or self.start + self.frames < self.stop) and self.capture.grab():
            # grab() decodes; only analyzed frames are converted to pixels (retrieve).
            # Files and streams carry timestamps, so variable frame rates stay right; a
            # camera's are not reliable on every driver, so it is timed by the clock.
            seconds = time.monotonic() - started if self.is_camera else self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            if self.max_seconds is not None and seconds > self.max_seconds:
                self.stopped = "max_seconds"
                return
            index, self.frames = self.start + self.frames, self.frames + 1
            if index % self.every:
                continue
            ok, bgr = self.capture.retrieve()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            found = self.faces.get(index, []) if self.analyzer is None else self.analyzer.analyze_frame(
                rgb, self.tracks, seconds)
            yield VideoFrame(index, seconds, found, rgb)
        self.stopped = "end"
        if self.faces and max(self.faces) >= self.start + self.frames:
            raise VideoError(f"{self.source}: the faces given go up to frame {max(self.faces)}, the video ends at frame "
                             f"{self.start + self.frames - 1}: they were found in another video")

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def analyze_video(
    source: str | Path | int, analyzer: AnalyzerSource = None,
    out_dir: str | Path = "ferlab-video", every: int = 1, annotate: bool | str = False, progress: bool = True,
    max_seconds: float | None = None, on_frame: Callable[[VideoFrame], None] | None = None,
    smooth_s: float = SMOOTH_S, workers: int = 1, html: bool = False, faces: dict[int, list[dict]] | None = None,
    sound: bool = True, subtitles: Sequence[str] = (), label_margin: float = LABEL_MARGIN,
) -> dict:
    """Analyze every ``every``-th frame of ``source`` (a video file, a camera index or a stream
    URL, as `VideoStream` takes) with ``analyzer`` (default: the bundled model and detector)
    into ``out_dir``; ``on_frame`` is called with each `VideoFrame` as it comes; ``smooth_s``
    smooths each track's probabilities over that many seconds and ``label_margin`` holds each
    track's label until another expression leads it by that much (`VideoStream`).

    ``workers`` > 1: a long file is cut into segments analyzed by up to that many processes,
    one CPU each, its tracks stitched across the cuts (`ferlab.video_segments`; ``on_frame``
    is then called a segment at a time); ``analyzer`` may be a picklable function that builds
    one, such as ``functools.partial(build_analyzer, "default")``, which each process calls once.

    Writes ``<name>.timeline.csv`` (one row per face per analyzed frame, with its timestamp
    and its track: the same id for the same person from frame to frame),
    ``<name>.emotions.png`` (the longest tracks over time) and, with ``annotate`` ("mp4",
    "webm" or "h264": `ANNOTATED_CODECS`; True: H.264 where PyAV is installed, else MPEG-4
    Part 2), ``<name>.annotated.mp4`` or ``.webm``, with the video's sound unless not
    ``sound`` (`AnnotatedCopy.finish`: the result's ``"sound"`` says what became of it); with ``html``,
    ``<name>.html``: the web page's player on its own (`ferlab.viewer`), which plays the video
    from where it is with each face boxed and a strip per track, offline; for each of
    ``subtitles`` ("srt", "vtt", "csv"), ``<name>.emotions.srt``, ``.vtt`` or ``.csv``: each
    track's label over time, for video players, or as a table (`ferlab.subtitles`). Reading
    stops at the end of the video, after ``max_seconds`` of it, or at Ctrl-C; in each case
    what was analyzed is written. Returns the paths, counts, why it stopped, a summary of each
    track (`summarize_tracks`) and of all faces together (`all_faces`), also written last to
    ``<name>.summary.json`` (`done_before` reads it).

    ``faces``: the faces an earlier analysis found (`read_faces`, found with this ``every``),
    written and drawn instead of analysing again: a copy or a viewer of a long analysis in a
    fraction of its time."""
    annotated_format = default_annotated_format() if annotate is True else annotate
    if annotated_format and annotated_format not in ANNOTATED_CODECS:
        raise ValueError(f"annotate must be True, False or one of {', '.join(ANNOTATED_CODECS)}, not {annotate!r}")
    out_dir = Path(out_dir)
    check_reading(every, max_seconds, smooth_s, label_margin)
    if unknown := set(subtitles) - set(SUBTITLE_FORMATS):
        raise ValueError(f"subtitles are srt, vtt or csv, not {', '.join(sorted(unknown))}")
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    if faces is not None and is_live(source):
        raise ValueError(f"{source}: faces found before are a video file's, not a camera's or a stream's")
    if annotated_format == "h264":
        check_h264()  # before hours of analysis
    segments = plan_segments(source, every, max_seconds, smooth_s, workers, label_margin) if faces is None else []
    if segments:
        video = SegmentedVideo(segments, analyzer_builder(analyzer), workers, decode=bool(annotated_format or on_frame))
    elif faces is not None:  # nothing to analyze, nor a model to load
        video = VideoStream(source, every=every, max_seconds=max_seconds, smooth_s=smooth_s, faces=faces)
    else:
        video = VideoStream(source, built_analyzer(analyzer), every, max_seconds, smooth_s, label_margin=label_margin)
    with video:
        out_dir.mkdir(parents=True, exist_ok=True)
        timeline_path = out_dir / f"{video.name}.timeline.csv"
        video_path = out_dir / f"{video.name}.annotated.{ANNOTATED_SUFFIXES.get(annotated_format, 'mp4')}"
        copy = (AnnotatedCopy(video_path, ANNOTATED_CODECS[annotated_format], video.fps, every)
                if annotated_format else None)
        times = []  # of each analyzed frame
        frames = []  # each analyzed frame's faces, for the viewer (html) and the subtitles
        tracks: dict[int, dict[int, list[float]]] = {}  # track -> {analyzed frame index: probabilities}
        # The timeline appears only once complete, and not at all when no frame was read.
        with atomic_write(timeline_path) as tmp_timeline, open(tmp_timeline, "w", newline="") as handle:
            table = csv.writer(handle)
            table.writerow(TIMELINE_HEADER)
            bar = tqdm(total=video.total and -(-video.total // every), unit="frame", disable=not progress)

            def show_progress(analyzed: int) -> None:  # never backwards, never past the end
                bar.update(max(0, min(analyzed, bar.total or analyzed) - bar.n))

            if isinstance(video, SegmentedVideo):  # the workers' count runs ahead of the frames handed over in order
                video.on_progress = show_progress
            try:
                for frame in video:
                    times.append(frame.time_s)  # first, so that a Ctrl-C below leaves the frame's rows consistent
                    table.writerows(timeline_rows(frame.index, frame.time_s, frame.faces))
                    add_to_tracks(tracks, len(times) - 1, frame.faces)
                    if html or subtitles:
                        frames.append({"frame": frame.index, "time_s": round(frame.time_s, 3), "faces": frame.faces})
                    if copy is not None:
                        copy.write(frame)
                    if on_frame is not None:
                        on_frame(frame)
                    show_progress(len(times))
            except KeyboardInterrupt:  # how a camera or live stream is stopped: keep what was analyzed
                video.stopped = "interrupted"
            except BaseException:  # faces given of another video, or a failure: no copy either
                if copy is not None:
                    copy.discard()
                raise
            bar.close()
            if not times:
                if video.stopped == "interrupted":
                    raise KeyboardInterrupt
                raise VideoError(f"{source}: the video has no readable frames")
            # as shown: a phone video recorded upright is turned (the workers' frames carry no pixels)
            size = frame.rgb.shape[1::-1] if frame.rgb.size else (int(video.capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                                                   int(video.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    written = copy is not None and copy.started  # not where Ctrl-C came before the first frame was drawn
    sound_kept = copy.finish(source, sound) if written else None
    plot_path = plot_timeline(np.array(times), tracks, out_dir / f"{video.name}.emotions.png", str(source))
    result = {"timeline": str(timeline_path), "plot": str(plot_path), "frames": video.frames,
              "analyzed_frames": len(times), "fps": video.fps, "every": every, "smooth_s": smooth_s,
              "label_margin": label_margin,
              "stopped": video.stopped, "tracks": summarize_tracks(times, tracks), "all_faces": all_faces(times, tracks)}
    if written:
        result["annotated"], result["sound"] = str(video_path), sound_kept
    if subtitles:
        cues = track_cues(frames, video.fps, every)
        result["subtitles"] = [str(write_subtitles(out_dir / f"{video.name}.emotions.{form}", cues, *size))
                               for form in subtitles]
    if html:
        answer = video_answer(frames, every, video.fps, video.frames, *size)
        playable_copy = video_path if annotated_format in ("h264", "webm") else None  # not MPEG-4 Part 2
        result["html"] = str(write_viewer(out_dir / f"{video.name}.html", answer, Path(str(source)).name,
                                          None if is_live(source) else Path(source), playable_copy))
    result["summary"] = str(out_dir / f"{video.name}.summary.json")  # last: the video is done once it is there
    atomic_write_text(result["summary"], json.dumps({"video": str(source), **result}, indent=1))
    return result


def done_before(summary: Path, options: dict) -> dict | None:
    """The summary `analyze_video` wrote in ``summary`` for a video it analyzed to its end with
    the ``every``, ``smooth_s`` and ``label_margin`` of ``options`` (`analyze_video`'s), and the annotated copy,
    viewer and subtitles they ask for; None if there is none (never analyzed, stopped early,
    analyzed otherwise, or not a summary)."""
    try:
        result = json.loads(summary.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("stopped") != "end":
        return None
    same = (result.get("every") == options.get("every", 1) and result.get("smooth_s") == options.get("smooth_s", SMOOTH_S)
            and result.get("label_margin") == options.get("label_margin", LABEL_MARGIN)
            and (not options.get("annotate") or "annotated" in result) and (not options.get("html") or "html" in result)
            and set(options.get("subtitles", ())) <= {Path(p).suffix[1:] for p in result.get("subtitles", [])})
    return result if same else None


def video_answer(frames: list[dict], every: int, fps: float, frames_read: int, width: int, height: int) -> dict:
    """What the web service answers for a video and the viewer shows: ``frames`` (each analyzed
    frame's index, time and faces with their tracks), a summary per track (`summarize_tracks`),
    and the video's frame rate, frames read and size."""
    tracks: dict[int, dict[int, list[float]]] = {}
    for position, frame in enumerate(frames):
        add_to_tracks(tracks, position, frame["faces"])
    times = [f["time_s"] for f in frames]
    return {"frames": frames, "tracks": summarize_tracks(times, tracks), "all_faces": all_faces(times, tracks),
            "every": every, "fps": fps, "frames_read": frames_read, "width": width, "height": height}


def draw_video(source: str | Path, faces: dict[int, list[dict]], every: int, path: str | Path,
               annotated_format: str = "h264", sound: bool = True) -> Path:
    """The annotated copy `analyze_video` writes with ``annotate=annotated_format``, drawn from
    faces already found instead of analysing again: ``faces`` maps a frame index (a multiple of
    ``every``) to its face records with their ``"track"`` (`read_faces`). Every ``every``-th
    frame of ``source`` (a file) is drawn, at its frame rate divided by ``every``, and written to
    ``path`` whole or not at all, with the video's sound unless not ``sound`` (`AnnotatedCopy`)."""
    if annotated_format not in ANNOTATED_CODECS:
        raise ValueError(f"annotated_format must be one of {', '.join(ANNOTATED_CODECS)}, not {annotated_format!r}")
    if annotated_format == "h264":
        check_h264()
    with VideoStream(source, every=every, smooth_s=0.0, faces=faces) as video:
        copy = AnnotatedCopy(path, ANNOTATED_CODECS[annotated_format], video.fps, every)
        try:
            for frame in video:
                copy.write(frame)
        except BaseException:
            copy.discard()
            raise
    if not copy.started:
        raise VideoError(f"{source}: the video has no readable frames")
    copy.finish(source, sound)
    return Path(path)


class AnnotatedCopy:
    """An annotated copy being written to ``path`` with ``codec``: each frame drawn with its
    faces as it comes, the writer opened at the first (its size), the frames kept beside
    ``path`` without sound until `finish` puts them in place with the video's sound.

    The copy has a constant rate, ``fps`` / ``every`` (at least 1; `COPY_FPS` where the
    video's is not known), and each of its frames shows the last frame drawn at or before its
    time: frames of a variable-rate video (a phone's, a browser's recording) are repeated or
    left out as their times say, so that the copy keeps the original's time, and its sound's."""

    def __init__(self, path: str | Path, codec: str, fps: float, every: int = 1) -> None:
        self.path, self.codec = Path(path), codec
        self.rate = max(fps / every, 1.0) if fps > 0 else COPY_FPS  # at least 1: some players take no less
        self.silent = temporary_beside(self.path)
        self.writer: cv2.VideoWriter | H264Writer | None = None
        self.start_s = 0.0  # the first frame's time: the copy's 0
        self.held: np.ndarray | None = None  # the last frame drawn, shown until the next one's time
        self.last_s = 0.0  # its time
        self.written = 0

    @property
    def started(self) -> bool:
        return self.writer is not None

    def write(self, frame: VideoFrame) -> None:
        drawn = cv2.cvtColor(draw_annotations(frame.rgb, frame.faces), cv2.COLOR_RGB2BGR)
        if self.writer is None:
            self.writer = _open_writer(self.silent, self.rate, frame.rgb.shape, self.codec)
            self.start_s = frame.time_s
        else:
            slot = round((frame.time_s - self.start_s) * self.rate)  # the copy's frame at this frame's time
            if frame.time_s <= self.last_s or abs(slot - self.written) > MAX_GAP_S * self.rate:
                # no time to go by (a stream without timestamps, a jump in its clock): the next frame
                self.start_s += (slot - self.written - 1) / self.rate
                slot = self.written + 1
            while self.written < slot:
                self.writer.write(self.held)
                self.written += 1
        self.held, self.last_s = drawn, frame.time_s

    def finish(self, source: str | Path | int, sound: bool = True) -> str:
        """Put the copy in place at ``path``: with ``source``'s sound unless not ``sound``
        (`ferlab.soundtrack.add_sound`). Says what became of the sound: "kept", "none" (the video
        has none; a camera's or a stream's is not read), or why it was "left out"; a sound that
        cannot be read leaves the copy silent."""
        self.writer.write(self.held)  # the last frame, shown once
        self.writer.release()
        try:
            if not sound:
                kept = "left out: asked for none"
            elif is_live(source):
                kept = "none"
            elif not h264_available():
                kept = 'left out: copying sound needs PyAV: pip install "ferlab[h264]"'
            else:
                try:
                    kept = "kept" if add_sound(source, self.silent, self.path) else "none"
                except SoundError as error:
                    kept = f"left out: {error}"
            if kept != "kept":
                os.replace(self.silent, self.path)
            return kept
        finally:
            self.silent.unlink(missing_ok=True)

    def discard(self) -> None:
        """No copy: what was written is removed."""
        if self.writer is not None:
            self.writer.release()
        self.silent.unlink(missing_ok=True)


def read_faces(path: str | Path, recording: str | Path | None = None) -> tuple[dict[int, list[dict]], int | None]:
    """The faces an earlier analysis found, checked, for `VideoStream`'s and `draw_video`'s
    ``faces``: from the timeline CSV `ferlab video` wrote, or the JSON the web service answered
    (the page's Save JSON), which alone has the landmarks. Returns frame index -> face records
    with their track, and the ``every`` they were found with (None from a CSV, which does not
    say: it has no row for a frame without faces). A live session's JSON is drawn on the
    frames of its ``recording`` by time (`answer_faces`)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            try:
                return answer_faces(path.read_bytes(), recording)
            except VideoError as error:
                raise VideoError(f"{path}: {error}: not the JSON of a video's analysis") from None
        return _timeline_faces(path), None
    except OSError as error:
        raise VideoError(f"{path}: {error.strerror or error}") from None


def parse_answer(text: bytes | str) -> VideoAnswer:
    """A JSON answer's text, checked; an error (`VideoError`) names where it is wrong, as
    ``frames.0.faces.0.label: Input should be ...``."""
    try:
        return VideoAnswer.model_validate_json(text)
    except ValidationError as error:
        raise VideoError(_first_error(error)) from None


def answer_faces(answer: bytes | str | VideoAnswer, recording: str | Path | None = None
                 ) -> tuple[dict[int, list[dict]], int]:
    """`read_faces` of a JSON answer (its text, or `parse_answer`'s). A live session's frames
    are numbered as they were analysed, not as a video's: they are drawn on the frames of its
    ``recording`` (the page's, which starts with the session) that come at or after each one's
    ``time_s`` and before the next, for at most `LIVE_HOLD_S`."""
    if not isinstance(answer, VideoAnswer):
        answer = parse_answer(answer)
    if not answer.live:
        return {frame.frame: _records(frame) for frame in answer.frames}, answer.every
    if recording is None:
        raise VideoError("a live session's: its frames are numbered as they were analysed, not as a video's, so its "
                         "faces are drawn only into its recording")
    capture, _, _ = open_source(recording)
    times, faces, index = [frame.time_s for frame in answer.frames], {}, 0
    try:
        while capture.grab():
            seconds = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            found = bisect.bisect_right(times, seconds + 1e-3) - 1  # the last analysed at or before it
            if found >= 0 and seconds - times[found] <= LIVE_HOLD_S and answer.frames[found].faces:
                faces[index] = _records(answer.frames[found])
            index += 1
    finally:
        capture.release()
    return faces, 1


def _records(frame: FoundFrame) -> list[dict]:
    return [face.model_dump(exclude_none=True) for face in frame.faces]


def _timeline_faces(path: Path) -> dict[int, list[dict]]:
    faces: dict[int, list[dict]] = {}
    with open(path, newline="") as handle:
        rows = csv.reader(handle)
        if next(rows, None) != TIMELINE_HEADER:
            raise VideoError(f"{path}: not a timeline of ferlab video (its first line is not "
                             f"{','.join(TIMELINE_HEADER)})")
        for line, row in enumerate(rows, start=2):
            if len(row) != len(TIMELINE_HEADER):
                raise VideoError(f"{path}, line {line}: {len(row)} fields, not {len(TIMELINE_HEADER)}")
            value = dict(zip(TIMELINE_HEADER, row, strict=True))
            record = {"box": [value[k] for k in "xywh"], "label": value["label"], "confidence": value["confidence"],
                      "probabilities": {e: value[e] for e in EMOTIONS}, "track": value["track"]}
            try:
                frame = FoundFrame.model_validate({"frame": value["frame"], "faces": [record]})
            except ValidationError as error:
                raise VideoError(f"{path}, line {line}: {_first_error(error).removeprefix('faces.0.')}") from None
            faces.setdefault(frame.frame, []).append(frame.faces[0].model_dump(exclude_none=True))
    return faces


def _first_error(error: ValidationError) -> str:
    """Where the first error is and what it is: ``frames.0.faces.0.label: Input should be ...``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def check_faces(source: str | Path | int, faces: dict[int, list[dict]], every: int) -> None:
    """Refuse faces found in frames that are not among every ``every``-th: found with another."""
    if stray := sorted(index for index in faces if index % every)[:1]:
        raise VideoError(f"{source}: frame {stray[0]} is not a multiple of every={every}: "
                         "give the every the faces were found with")


def is_camera(source: str | Path | int) -> bool:
    """Whether ``source`` is a camera index (``0`` or ``"0"``; an existing file of that name wins)."""
    return isinstance(source, int) or (str(source).isdigit() and not Path(str(source)).exists())


def is_live(source: str | Path | int) -> bool:
    """Whether ``source`` names a camera or a stream URL: a source read as it comes, never cut."""
    return is_camera(source) or "://" in str(source)


def video_inputs(items: Iterable[str]) -> list[str]:
    """Cameras and stream URLs as given, files as given, folders searched recursively for
    videos (`VIDEO_SUFFIXES`), glob patterns expanded (`ferlab.predict.expand_inputs`)."""
    return [found for item in items
            for found in ([item] if is_live(item) else map(str, expand_inputs([item], VIDEO_SUFFIXES)))]


def analyze_videos(
    sources: Sequence[str | Path | int], analyzer: AnalyzerSource = None,
    out_dir: str | Path = "ferlab-video", workers: int = 1, progress: bool = True, resume: bool = False,
    **options,
) -> Iterator[dict]:
    """`analyze_video` for each of ``sources`` into ``out_dir`` (``options``: its own), one
    result per video in order: its summary with ``"video"``, or ``{"video", "error"}`` for one
    that cannot be read. One video is analyzed as `analyze_video` does, cut into segments for
    ``workers``; several are shared whole among ``workers`` processes (``analyzer`` then a
    picklable function that builds one), and each writes ``<name>.timeline.csv`` and the rest
    under its `ferlab.predict.output_names` folder (videos of one name in different folders
    go to sub-folders; two in one folder that differ by their suffix alone are refused).
    Ctrl-C stops after the videos under way, each written as far as it was analyzed.

    ``resume``: a video file whose summary says it was analyzed to its end as ``options`` ask
    (`done_before`: after a run that was stopped or crashed) is not analyzed again; its summary
    comes first, marked ``"resumed": True``."""

    def earlier(source: str | Path | int, folder: Path) -> dict | None:
        if not resume or is_live(source):
            return None
        found = done_before(folder / f"{Path(str(source)).stem}.summary.json", options)
        return found and {"resumed": True, **found, "video": str(source)}

    if len(sources) == 1:
        yield earlier(sources[0], Path(out_dir)) or {
            "video": str(sources[0]), **analyze_video(sources[0], analyzer, out_dir, progress=progress,
                                                      workers=workers, **options)}
        return
    if options.get("faces") is not None:
        raise ValueError("faces found before are one video's: analyze that one alone")
    live = [str(s) for s in sources if is_live(s)]
    if live:
        raise ValueError(f"{live[0]}: a camera or stream is analyzed alone, not among other videos")
    names = output_names([Path(s) for s in sources])  # videos of one name in different folders: in sub-folders
    for source, name in names.items():
        if Path(name).name != source.stem:  # two in one folder differ by their suffix alone
            raise ValueError(f"several videos in {source.parent} are named {source.stem!r}: their outputs would "
                             "overwrite each other; analyze them into different --out folders")
    check_reading(options.get("every", 1), options.get("max_seconds"), options.get("smooth_s", SMOOTH_S),
                  options.get("label_margin", LABEL_MARGIN))
    work = [(str(source), str(Path(out_dir) / Path(names[Path(source)]).parent), options) for source in sources]
    done = [earlier(source, Path(folder)) for source, folder, _ in work]
    yield from filter(None, done)
    work = [item for item, found in zip(work, done, strict=True) if not found]
    if not work:
        return
    workers = min(workers, len(work))
    if workers > 1:
        from .parallel import map_in_workers

        results = map_in_workers(analyzer_builder(analyzer), _analyze_whole_video, work, workers)
    else:
        built = built_analyzer(analyzer)
        results = (_analyze_whole_video(built, item) for item in work)
    with tqdm(total=len(work), unit="video", disable=not progress) as bar:
        for result in results:
            yield result
            bar.update(1)
            if result.get("stopped") == "interrupted":
                return


def _analyze_whole_video(analyzer: Analyzer, work: tuple[str, str, dict]) -> dict:
    """One of several videos, in this process; in a worker, cut short when the parent stops."""
    from .parallel import stopping

    source, out_dir, options = work

    def stop_with_the_parent(frame: VideoFrame) -> None:
        if stopping():
            raise KeyboardInterrupt  # analyze_video writes what was analyzed

    if stopping():  # handed out just before the parent stopped
        return {"video": source, "error": "not begun: stopped"}
    try:
        return {"video": source, **analyze_video(source, analyzer, out_dir, progress=False,
                                                 on_frame=stop_with_the_parent, **options)}
    except VideoError as error:
        return {"video": source, "error": str(error)}


def open_source(source: str | Path | int) -> tuple[cv2.VideoCapture, str, bool]:
    """An open capture of a video file, camera index or stream URL, the name its output files
    take, and whether it is a camera."""
    text = str(source)
    if is_camera(source):
        capture = cv2.VideoCapture(int(text))
        if not capture.isOpened():
            raise VideoError(f"camera {text}: cannot open it (no such camera, no permission, or in use)")
        return capture, f"camera{text}", True
    if "://" in text:
        capture = cv2.VideoCapture(text)
        if not capture.isOpened():
            raise VideoError(f"{text}: cannot open the stream (unreachable, or not a video OpenCV's FFmpeg can read)")
        return capture, Path(urlparse(text).path).stem or "stream", False
    path = Path(source)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: not a video OpenCV can open (corrupt, truncated or unsupported codec)")
    return capture, path.stem, False


def add_to_tracks(tracks: dict[int, dict[int, list[float]]], position: int, faces: list[dict]) -> None:
    """Add the faces of one analyzed frame (records with their ``"track"``) to ``tracks``:
    track -> {the frame's position among the analyzed frames: its seven probabilities}, the
    form `summarize_tracks` and `plot_timeline` read."""
    for face in faces:
        tracks.setdefault(face["track"], {})[position] = [face["probabilities"][e] for e in EMOTIONS]


def summarize_tracks(times: list[float], tracks: dict[int, dict[int, list[float]]]) -> list[dict]:
    """Per track, longest first: when it was seen, in how many analyzed frames, its
    probabilities averaged over those frames with the label they give, and the share of those
    frames each label was the face's own (how long a person looked happy, say; JSON-safe)."""
    summaries = []
    for track in sorted(tracks, key=lambda t: (-len(tracks[t]), t)):
        seen = sorted(tracks[track])
        summaries.append({"track": track, **_seen_summary(times, seen, [tracks[track][index] for index in seen])})
    return summaries


def all_faces(times: list[float], tracks: dict[int, dict[int, list[float]]]) -> dict | None:
    """Every face of every analyzed frame together (a crowd's, an audience's mood): when faces
    were seen, in how many analyzed frames and face-frames, their mean probabilities with the
    label they give, and the share of face-frames each label was the face's own; None where no
    face was found. Each face counts once per frame: a frame with more faces weighs more."""
    probabilities = [p for track in tracks.values() for p in track.values()]
    if not probabilities:
        return None
    seen = sorted({position for track in tracks.values() for position in track})
    return _seen_summary(times, seen, probabilities) | {"face_frames": len(probabilities)}


def _seen_summary(times: list[float], seen: list[int], probabilities: list[list[float]]) -> dict:
    """From the first to the last of the analyzed frames ``seen`` (positions in ``times``), how
    many, and of ``probabilities`` (a face's in each): their mean with the label it gives, and
    the share of them each label was the highest in (JSON-safe)."""
    probabilities = np.array(probabilities)
    mean = probabilities.mean(axis=0)
    shares = np.bincount(probabilities.argmax(axis=1), minlength=len(EMOTIONS)) / len(probabilities)
    return {"first_s": round(times[seen[0]], 3), "last_s": round(times[seen[-1]], 3), "analyzed_frames": len(seen),
            "label": EMOTIONS[int(np.argmax(mean))],
            "probabilities": {e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)},
            "label_shares": {e: round(float(share), 4) for e, share in zip(EMOTIONS, shares, strict=True)}}


TIMELINE_HEADER = ["frame", "time_s", "face", "track", "x", "y", "w", "h", "label", "confidence", *EMOTIONS]


def timeline_rows(index: int, time_s: float, faces: list[dict]) -> list[list]:
    """An analyzed frame's rows of a timeline CSV (`TIMELINE_HEADER`): one per face, by size."""
    return [[index, f"{time_s:.3f}", i, face["track"], *face["box"], face["label"], face["confidence"],
             *(face["probabilities"][e] for e in EMOTIONS)] for i, face in enumerate(faces)]


SUMMARY_HEADER = ["video", "track", "first_s", "last_s", "analyzed_frames", "label", *EMOTIONS,
                  *(f"share_{e}" for e in EMOTIONS), "error"]


def summary_rows(result: dict) -> list[list]:
    """A video's rows of a summary table (`SUMMARY_HEADER`): one per track, longest first, with
    its mean probabilities and each label's share of its frames, then with several tracks one
    of all faces together (track "all", `all_faces`); or one with the error of a video that
    could not be read."""
    if "error" in result:
        return [[result["video"], *[""] * (len(SUMMARY_HEADER) - 2), result["error"]]]
    return [[result["video"], t["track"], t["first_s"], t["last_s"], t["analyzed_frames"], t["label"],
             *(t["probabilities"][e] for e in EMOTIONS), *(t["label_shares"][e] for e in EMOTIONS), ""]
            for t in tracks_and_all(result)]


def tracks_and_all(result: dict) -> list[dict]:
    """A video's track summaries (`analyze_video`'s result), then, where there are several, all
    faces together as one more with ``"track": "all"`` (`all_faces`; a result read from a
    summary written before there was one has none)."""
    several = len(result["tracks"]) > 1 and result.get("all_faces")
    return result["tracks"] + ([{"track": "all", **result["all_faces"]}] if several else [])


def _open_writer(path: Path, fps: float, shape: tuple[int, ...], codec: str) -> cv2.VideoWriter | H264Writer:
    if codec == "libx264":
        return H264Writer(path, fps, shape)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot write a {path.suffix[1:].upper()} video here")
    return writer


def default_annotated_format() -> str:
    """H.264, which plays everywhere at a fifth of the size, where PyAV is installed; else
    OpenCV's MPEG-4 Part 2."""
    return "h264" if h264_available() else "mp4"


def h264_available() -> bool:
    """Whether PyAV, which writes H.264 copies, is installed (`check_h264` says how to get it)."""
    try:
        check_h264()
    except VideoError:
        return False
    return True


def check_h264() -> None:
    """Refuses H.264 where PyAV, which writes it, is not installed, saying how to get it."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise VideoError('H.264 copies are written by PyAV: pip install "ferlab[h264]" (its wheels bundle x264, GPL), '
                         "or ask for mp4 (MPEG-4 Part 2) or webm (VP8)") from None


class H264Writer:
    """An H.264 MP4 written by PyAV's libx264, with `cv2.VideoWriter`'s ``write`` (BGR frames)
    and ``release``: preset "veryfast" (a 60 s 1280x720 copy: 8.3 MB against OpenCV's 40 MB
    of MPEG-4 Part 2 and 57 MB of VP8; `benchmarks/serve_video.py`), yuv420p, which every
    player takes, so an odd width or height is cut by one pixel."""

    def __init__(self, path: Path, fps: float, shape: tuple[int, ...]):
        check_h264()
        import av

        self.height, self.width = shape[0] // 2 * 2, shape[1] // 2 * 2
        self.to_frame = av.VideoFrame.from_ndarray
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                                options={"preset": "veryfast", "crf": "23"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.thread_count = usable_cpus()  # one in a worker process of `ferlab.parallel`

    def write(self, bgr: np.ndarray) -> None:
        frame = self.to_frame(np.ascontiguousarray(bgr[: self.height, : self.width]), format="bgr24")
        self.container.mux(self.stream.encode(frame))

    def release(self) -> None:
        self.container.mux(self.stream.encode())  # what the encoder still holds
        self.container.close()


def plot_timeline(times: np.ndarray, tracks: dict[int, dict[int, list[float]]], path: Path, title: str,
                  max_panels: int = 4) -> Path:
    """Stacked probabilities over time, one panel per face track (the ``max_panels`` seen in
    the most frames), with gaps where that face was not found; with several tracks, a first
    panel of all faces together: each frame's mean over the faces in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = sorted(tracks, key=lambda track: (-len(tracks[track]), track))[:max_panels]
    panels: list[tuple[str, str, dict[int, list[float]]]] = [
        (f"face track {track}", f"track {track}: found in {len(tracks[track])} of {len(times)} analyzed frames",
         tracks[track]) for track in longest]
    if len(tracks) > 1:
        in_frame: dict[int, list[list[float]]] = {}
        for track in tracks.values():
            for index, probabilities in track.items():
                in_frame.setdefault(index, []).append(probabilities)
        panels.insert(0, ("all faces", f"all {len(tracks)} face tracks: each frame's mean over its faces",
                          {index: np.mean(found, axis=0).tolist() for index, found in in_frame.items()}))
    fig, axes = plt.subplots(max(1, len(panels)), 1, figsize=(9, 1.2 + 2.2 * max(1, len(panels))),
                             sharex=True, squeeze=False)
    colours = [np.array(PALETTE[e]) / 255 for e in EMOTIONS]
    for ax, (label, heading, series_of) in zip(axes[:, 0], panels, strict=False):
        series = np.zeros((len(times), len(EMOTIONS)))
        for index, probabilities in series_of.items():
            series[index] = probabilities
        ax.stackplot(times, series.T, labels=EMOTIONS, colors=colours)
        ax.set_ylabel(label)
        ax.set_title(heading, fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylim(0, 1)
    if panels:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8)
    else:
        axes[0, 0].set_title("no face found", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    if len(times) > 1:  # the video's span, also where no face was found
        axes[-1, 0].set_xlim(times[0], times[-1])
    fig.suptitle(title)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
