"""A video's emotions as subtitles: each face track's label over time, for any video player.

A subtitle file plays beside the video as it is (its own quality and sound, no copy to write):
VLC, mpv and most players load ``clip.emotions.srt`` with ``clip.mp4``, web browsers a WebVTT
``<track>``. `track_cues` turns the analyzed frames into one cue per face track per stretch of
time its label stays the same; `write_subtitles` writes them as SubRip (``.srt``, whose cues
stack at the bottom), WebVTT (``.vtt``, where each cue is placed over its face), or a table
(``.csv``: when each person looked how, for a spreadsheet or an annotation tool such as ELAN).
The web page writes the same SubRip and WebVTT from an analysis it has (``assets/index.html``,
``subtitlesSrt`` and ``subtitlesVtt``; tests/test_viewer.py compares them)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text

SUBTITLE_FORMATS = ("srt", "vtt", "csv")
CUE_HEADER = ["track", "label", "start_s", "end_s", "confidence"]


@dataclass(frozen=True)
class Cue:
    """Track ``track`` had ``label`` from ``start_s`` to ``end_s``, with this mean confidence;
    ``box`` is its face's at the start (x, y, w, h in the frame's pixels)."""

    track: int
    label: str
    start_s: float
    end_s: float
    confidence: float
    box: tuple[float, float, float, float]


def track_cues(frames: list[dict], fps: float, every: int) -> list[Cue]:
    """The cues of ``frames`` (each analyzed frame's ``time_s`` and ``faces`` with their
    ``track``, in time order, as `ferlab.video.video_answer` has them), every ``every``-th of a
    video of ``fps`` frames a second, in order of start. A cue ends where its track's label
    changes or the track is not found, at that frame's time; a cue still open at the last frame
    ends one analyzed frame later (`frame_interval`)."""
    cues: list[Cue] = []
    open_cues: dict[int, tuple[dict, float, list[float]]] = {}  # track -> (first face, start, confidences)

    def close(track: int, end_s: float) -> None:
        face, start_s, confidences = open_cues.pop(track)
        cues.append(Cue(track, face["label"], start_s, end_s, sum(confidences) / len(confidences),
                        tuple(face["box"])))

    for frame in frames:
        here = {face["track"]: face for face in frame["faces"]}
        for track in [t for t in open_cues if t not in here or here[t]["label"] != open_cues[t][0]["label"]]:
            close(track, frame["time_s"])
        for track, face in here.items():
            if track in open_cues:
                open_cues[track][2].append(face["confidence"])
            else:
                open_cues[track] = (face, frame["time_s"], [face["confidence"]])
    for track in list(open_cues):
        close(track, frames[-1]["time_s"] + frame_interval([frame["time_s"] for frame in frames], fps, every))
    return sorted(cues, key=lambda cue: (cue.start_s, cue.track))


def frame_interval(times: list[float], fps: float, every: int) -> float:
    """The time between analyzed frames: by the frame rate, or where it is not known (some
    streams and cameras, a live session), the median step between ``times``."""
    if fps > 0:
        return every / fps
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


def write_subtitles(path: str | Path, cues: list[Cue], width: int, height: int) -> Path:
    """``cues`` as SubRip, WebVTT or CSV, by ``path``'s suffix (`subtitle_text`)."""
    path = Path(path)
    return atomic_write_text(path, subtitle_text(cues, path.suffix[1:], width, height))


def subtitle_text(cues: list[Cue], subtitle_format: str, width: int, height: int) -> str:
    """``cues`` as SubRip ("srt"), WebVTT ("vtt") or a table ("csv": `CUE_HEADER`, one row per
    cue); ``width`` and ``height``: the frame's, to place WebVTT cues over their faces."""
    if subtitle_format == "vtt":
        return _webvtt(cues, width, height)
    if subtitle_format == "srt":
        return _subrip(cues)
    if subtitle_format == "csv":
        return _table(cues)
    raise ValueError(f"subtitles are SubRip (srt), WebVTT (vtt) or a table (csv), not {subtitle_format!r}")


def _text(cue: Cue) -> str:
    return f"{cue.track}: {cue.label} {_rounded(100 * cue.confidence)}%"


def _rounded(value: float) -> int:
    """Halves up, as JavaScript's Math.round: the web page writes the same subtitles."""
    return math.floor(value + 0.5)


def _subrip(cues: list[Cue]) -> str:
    return "".join(f"{number}\n{_clock(cue.start_s, ',')} --> {_clock(cue.end_s, ',')}\n{_text(cue)}\n\n"
                   for number, cue in enumerate(cues, 1))


def _table(cues: list[Cue]) -> str:
    text = io.StringIO()
    table = csv.writer(text, lineterminator="\n")
    table.writerow(CUE_HEADER)
    table.writerows([cue.track, cue.label, f"{cue.start_s:.3f}", f"{cue.end_s:.3f}", f"{cue.confidence:.4f}"]
                    for cue in cues)
    return text.getvalue()


def _webvtt(cues: list[Cue], width: int, height: int) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        x, y, w, _ = cue.box
        # centred over the face, on the line of its box's top (above it where there is room)
        placement = (f"position:{_percent(100 * (x + w / 2) / width)}% line:{_percent(100 * y / height - 6)}%"
                     " align:center size:30%")
        blocks.append(f"{_clock(cue.start_s, '.')} --> {_clock(cue.end_s, '.')} {placement}\n{_text(cue)}\n")
    return "\n".join(blocks)


def _percent(value: float) -> str:
    """``value`` within 0-100 to a tenth, halves up as the web page rounds (`_rounded`)."""
    return f"{_rounded(10 * min(max(value, 0), 100)) / 10:.1f}"


def _clock(seconds: float, decimal: str) -> str:
    milliseconds = max(_rounded(seconds * 1000), 0)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{decimal}{rest % 1000:03d}"
