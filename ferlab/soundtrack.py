"""The sound of a video, put into its annotated copy.

OpenCV reads and writes the frames, and has no sound. Where PyAV is installed (``pip install
"ferlab[h264]"``), `add_sound` joins the copy's frames, as they are, with the original's first
audio stream, aligned to the start of its video and cut to the copy's length: its packets are
copied where the copy's container takes their codec (AAC, MP3 or ALAC into MP4, Opus or Vorbis
into WebM), else the sound is decoded and encoded again (AAC into MP4, Opus into WebM)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from .atomic import atomic_write

COPIED_CODECS = {".mp4": {"aac", "mp3", "alac"}, ".webm": {"opus", "vorbis"}}
ENCODER = {".mp4": "aac", ".webm": "libopus"}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)  # the only sample rates Opus takes


class SoundError(RuntimeError):
    """The original's sound could not be put into the copy (its audio stream cannot be read)."""


def add_sound(source: str | Path, silent: str | Path, path: str | Path) -> bool:
    """Write to ``path`` (whole or not at all) the frames of ``silent``, a copy of ``source``'s
    video (MP4 or WebM) without sound, with ``source``'s sound. False, with nothing written,
    where ``source`` has no sound or PyAV is not installed; `SoundError` where its sound cannot
    be read."""
    try:
        import av
    except ImportError:
        return False
    path = Path(path)
    try:
        with av.open(str(source)) as original:
            if not original.streams.audio:
                return False
            sound = original.streams.audio[0]
            # the copy's first frame is the original's first: sound before it is left out
            start_s = _start_s(original.streams.video[0]) if original.streams.video else 0.0
            with av.open(str(silent)) as frames, atomic_write(path) as tmp, av.open(str(tmp), "w") as out:
                video = frames.streams.video[0]
                end_s = max((_time_s(p.pts + (p.duration or 0), p) for p in frames.demux(video) if p.pts is not None),
                            default=0.0)
                frames.seek(0)
                video_out = out.add_stream_from_template(video)
                if sound.codec_context.name in COPIED_CODECS[path.suffix]:
                    sound_out = out.add_stream_from_template(sound)
                    sound_packets = _copied(original, sound, start_s, end_s)
                else:
                    sound_out = _encoder(out, ENCODER[path.suffix], sound)
                    sound_packets = _encoded(original, sound, sound_out, start_s, end_s)
                video_packets = ((_time_s(p.dts, p), p) for p in frames.demux(video) if p.dts is not None)
                # interleaved by time, as players read them
                for _, packet, stream in heapq.merge(_with(video_packets, video_out), _with(sound_packets, sound_out),
                                                     key=lambda item: item[0]):
                    packet.stream = stream
                    out.mux(packet)
    except av.FFmpegError as error:
        raise SoundError(f"{source}: its sound could not be put into the copy: {error}") from None
    return True


def _with(packets: Iterator, stream) -> Iterator:
    return ((time_s, packet, stream) for time_s, packet in packets)


def _time_s(timestamp: int, item) -> float:
    return float(timestamp * item.time_base)


def _start_s(stream) -> float:
    return _time_s(stream.start_time, stream) if stream.start_time is not None else 0.0


def _copied(original, sound, start_s: float, end_s: float) -> Iterator:
    """The sound's packets from ``start_s`` to ``end_s``, moved to start at 0."""
    shift = round(start_s / sound.time_base)
    for time_s, packet in _between(original.demux(sound), start_s, end_s):
        packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
        yield time_s, packet


def _encoder(out, codec: str, sound):
    rate = sound.rate
    if codec == "libopus" and rate not in OPUS_RATES:
        rate = 48000
    stream = out.add_stream(codec, rate=rate)
    stream.layout = "stereo" if sound.layout.nb_channels >= 2 else "mono"
    return stream


def _encoded(original, sound, stream, start_s: float, end_s: float) -> Iterator:
    """The sound from ``start_s`` to ``end_s``, decoded and encoded by ``stream`` from 0 on."""
    for time_s, frame in _between(original.decode(sound), start_s, end_s):
        frame.pts, frame.time_base = round(time_s * frame.sample_rate), Fraction(1, frame.sample_rate)
        for packet in stream.encode(frame):
            yield _time_s(packet.pts, packet), packet
    for packet in stream.encode(None):  # what the encoder still holds
        yield _time_s(packet.pts, packet), packet


def _between(items: Iterator, start_s: float, end_s: float) -> Iterator:
    """(seconds after ``start_s``, item) of the packets or frames from ``start_s`` up to ``end_s``."""
    for item in items:
        if item.pts is None or getattr(item, "dts", 0) is None:
            continue  # the demuxer's empty packet at the end
        time_s = _time_s(item.pts, item) - start_s
        if time_s >= end_s:
            return
        if time_s >= 0:
            yield time_s, item
