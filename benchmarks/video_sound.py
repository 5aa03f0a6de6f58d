"""What does keeping a video's sound cost an annotated copy, and is the sound in time?

The clip is `video_tracks.py`'s (the astronaut's portraits drifting about a 1280x720 frame at
30 frames/s), ``--frames`` long, given a stereo AAC sound track at 44.1 kHz: noise with a
click every second (at 0.5 s, 1.5 s, ...). Untimed first, it is analyzed once for its faces.
Then, alternately, ``--repeats`` times per format: `ferlab.draw_video` from those faces with
``sound=False`` and with the sound (`ferlab.soundtrack.add_sound`: AAC copied into an MP4,
encoded again as Opus into a WebM). Reported: wall seconds, the copy's size, and for a copy
with sound how far each click lies from where it is in the clip (the largest offset, in ms).

    python benchmarks/video_sound.py [--frames 1800] [--repeats 2] [--formats h264 mp4 webm]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from video_tracks import FPS, HEIGHT, WIDTH, portraits, write_clip

from ferlab.hardware import machine_description
from ferlab.soundtrack import add_sound
from ferlab.video import analyze_video, draw_video, read_faces

RATE = 44100


def write_sound(path: Path, seconds: float) -> None:
    """Stereo AAC: quiet noise with a loud click at 0.5 s, 1.5 s, 2.5 s, ..."""
    samples = np.random.default_rng(0).normal(0, 0.01, int(seconds * RATE)).astype(np.float32)
    for click in np.arange(0.5, seconds, 1.0):
        samples[int(click * RATE):int(click * RATE) + 32] = 0.9
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=RATE)
        stream.layout = "stereo"
        for start in range(0, len(samples), 1024):
            chunk = np.repeat(samples[None, start:start + 1024], 2, axis=0)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def click_offsets_ms(path: Path, seconds: float) -> float:
    """The largest distance between a click heard in ``path`` and where it was put."""
    with av.open(str(path)) as video:
        stream = video.streams.audio[0]
        frames = list(video.decode(stream))
        start = float(frames[0].pts * frames[0].time_base)
        samples = np.abs(np.concatenate([f.to_ndarray()[0] for f in frames]))
    offsets = []
    for click in np.arange(0.5, seconds - 0.5, 1.0):
        window = slice(int((click - start - 0.25) * stream.rate), int((click - start + 0.25) * stream.rate))
        heard = start + (window.start + samples[window].argmax()) / stream.rate
        offsets.append(abs(heard - click))
    return round(1000 * max(offsets), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--formats", nargs="+", default=["h264", "mp4", "webm"], choices=["h264", "mp4", "webm"])
    args = parser.parse_args()

    seconds = args.frames / FPS
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_clip(folder / "frames.mp4", portraits(args.faces), args.frames)
        write_sound(folder / "sound.m4a", seconds)
        clip = folder / "clip.mp4"
        add_sound(folder / "sound.m4a", folder / "frames.mp4", clip)  # the sound has no video: from 0
        first = analyze_video(clip, None, folder / "first", progress=False)
        faces, _ = read_faces(first["timeline"])
        for repeat in range(args.repeats):
            for answer_format in args.formats:
                for sound in (False, True):
                    copy = folder / f"copy-{answer_format}-{sound}.{'webm' if answer_format == 'webm' else 'mp4'}"
                    started = time.perf_counter()
                    draw_video(clip, faces, 1, copy, answer_format, sound=sound)
                    runs.append({"format": answer_format, "sound": sound, "round": repeat,
                                 "seconds": round(time.perf_counter() - started, 2), "bytes": copy.stat().st_size,
                                 **({"clicks_off_by_ms": click_offsets_ms(copy, seconds)} if sound else {})})
                    print(json.dumps(runs[-1]), flush=True)
    print(json.dumps({
        "clip": f"{args.frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {args.faces} portraits, stereo AAC at {RATE} Hz",
        "machine": machine_description(), "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
