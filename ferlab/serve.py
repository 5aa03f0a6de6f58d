"""`ferlab serve`: a web page and a REST API around `Analyzer`, on FastAPI + uvicorn.

- ``GET /``            one page: drop or pick photos or videos, or use the webcam (a snapshot, or live)
- ``POST /v1/analyze`` multipart ``file`` -> ``{"faces": [...], "width", "height"}``;
  with ``?stream=NAME`` the photo is the next frame of a live stream (the page's webcam
  mode): its faces keep track ids from frame to frame and their probabilities are smoothed
  over time, as `ferlab video` does (`LiveStreams`); with ``?explain=true`` each face of a
  photo also gets a picture of where its label comes from (`ferlab.explain`); with
  ``?cropped=true`` the photo is one face crop, classified whole; with ``?format=csv`` the
  answer is `ferlab predict`'s CSV rows instead, as a file to save
- ``POST /v1/analyze-video`` multipart ``file`` (MP4, MOV, WebM, MKV or AVI) -> each
  analyzed frame's faces with their track ids, and a summary per track (`ferlab video`'s);
  every ``every``-th frame, by default as few as keep the analysis under `MAX_VIDEO_FRAMES`;
  with ``?progress=true`` the answer comes as JSON lines, a count of the frames analyzed
  about twice a second and then the result (the page shows how far it is), and the
  analysis stops if the client goes away; with ``?format=csv`` the answer is the timeline CSV
  `ferlab video` writes, with ``?format=h264``, ``webm`` or ``mp4`` its annotated copy; a long
  video is shared among ``video_workers`` processes (`ferlab serve --workers`); videos are
  analysed one at a time, the others waiting their turn (`VideoLine`)
- ``POST /v1/draw-video`` multipart ``file`` (the video) and ``result`` (its /v1/analyze-video
  JSON answer) -> the annotated copy (``?format=h264``, ``webm`` or ``mp4``) drawn from those
  faces, without analysing again (`ferlab.video.draw_video`); it takes its turn as analyses do
- ``GET /v1/health`` (with the annotated video formats this server writes), ``GET /v1/model``
  (the model card), ``/docs`` (OpenAPI)

Limits for a public demo: uploads over ``max_upload_bytes`` are refused (413) before they
are read in full; a body that comes slower than ``body_min_rate`` after ``body_seconds`` is
cut off (408, slow clients); the file type is sniffed from its first bytes (415 otherwise); images are
decoded under a pixel limit; every error is a JSON ``{"error": {"status", "message"}}``.
Analysis runs in the thread pool, so the event loop keeps serving other requests, and
pictures are analysed side by side where the detector allows it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import replace
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import cv2
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .detect import DECODE_MIN_SIDE, get_detector
from .explain import explained_records
from .imageio import ImageError, decode_image, is_heif
from .predict import CSV_HEADER, Analyzer, build_analyzer, csv_rows
from .subtitles import subtitle_text, track_cues
from .track import LABEL_MARGIN, SMOOTH_S, SmoothedTracks
from .video import (
    ANNOTATED_CODECS,
    ANNOTATED_SUFFIXES,
    TIMELINE_HEADER,
    VideoError,
    VideoStream,
    analyze_video,
    answer_faces,
    check_h264,
    draw_video,
    h264_available,
    open_source,
    parse_answer,
    timeline_rows,
    video_answer,
)
from .video_segments import SegmentedVideo, frame_count, plan_segments

# A 48- or 50-megapixel phone photo passes: as a JPEG it is decoded at a quarter of its size,
# in about 0.2 s here (benchmarks/big_photos.py); a PNG that size takes about 150 MB to decode.
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# Videos waiting for their turn beyond the one being analysed (`VideoLine`); more are refused.
MAX_WAITING_VIDEOS = 8
MAX_PIXELS = 51_000_000
# ?explain=true costs about 0.4 s a face on ONNX Runtime here: a group photo must not keep
# the server busy for a minute.
MAX_EXPLAINED_FACES = 8
# A video upload: at most this big, and analyzed at this many frames at most (every k-th frame
# beyond), about a minute of work on 2 cores for a 1280x720 video (benchmarks/video_workers.py).
MAX_VIDEO_BYTES = 200 * 1024 * 1024
MAX_VIDEO_FRAMES = 1800
# The analysis answer /v1/draw-video draws from: 2.2 MB for 1,800 frames with three faces each.
MAX_DRAWING_BYTES = 64 * 1024 * 1024
# /v1/analyze-video's subtitles (`ferlab.subtitles`), and its copies' sound (`ferlab.soundtrack`).
SUBTITLE_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
SOUND_HELP = ("mp4, webm or h264: the copy with the video's sound (where the server has PyAV: "
              "/v1/health's annotated_video_sound); false: without")
# Leading bytes of the formats the page accepts; anything else is refused unread.
SIGNATURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"BM": "image/bmp",
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
}


# A live stream's name, chosen by the client (the page picks a random one per start).
STREAM_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class StreamError(ValueError):
    """A frame a live stream cannot take (one timed before the stream's last frame)."""


class LiveStreams:
    """The face tracks of each live stream the clients name, so that a stream's faces keep
    their ids and smoothed probabilities from request to request. Bounded for a public
    server: a stream idle for ``idle_s`` is forgotten, and beyond ``max_streams`` the least
    recently used one is; a forgotten stream that comes back starts new tracks."""

    def __init__(self, smooth_s: float = SMOOTH_S, max_streams: int = 64, idle_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, label_margin: float = LABEL_MARGIN) -> None:
        SmoothedTracks(smooth_s, label_margin)  # a bad time constant or margin fails here, when the app is made
        self.smooth_s, self.max_streams, self.idle_s, self.clock = smooth_s, max_streams, idle_s, clock
        self.label_margin = label_margin
        # name -> (tracks, server time of its first frame, of its last use, the last frame's time)
        self._streams: OrderedDict[str, tuple[SmoothedTracks, float, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._streams)

    def frame(self, name: str, time_s: float | None = None) -> tuple[SmoothedTracks, float]:
        """The tracks of stream ``name`` and the time of its next frame: ``time_s``, or by
        default the seconds since the stream's first frame by the server's clock. A time
        before the stream's last frame is refused (`StreamError`): smoothing would ignore it."""
        now = self.clock()
        for stale in [n for n, (_, _, used, _) in self._streams.items() if now - used > self.idle_s]:
            del self._streams[stale]
        new = (SmoothedTracks(self.smooth_s, self.label_margin), now, now, -math.inf)
        tracks, started, _, last = self._streams.pop(name, None) or new
        frame_s = now - started if time_s is None else time_s
        self._streams[name] = (tracks, started, now, max(frame_s, last))  # at the end: the most recently used
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)
        if frame_s < last:
            raise StreamError(f"stream {name!r}: a frame at {frame_s:g} s comes after one at {last:g} s; "
                              "send a stream's frames in time order, or name a new stream to start again")
        return tracks, frame_s


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if is_heif(head):
        return "image/heic"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return next((kind for magic, kind in SIGNATURES.items() if head.startswith(magic)), None)


def sniff_video(head: bytes) -> str | None:
    """The container of a video upload from its first bytes: MP4/MOV (an ISO file that is not a
    still image), WebM/MKV (EBML) or AVI; None for anything else."""
    if head[4:8] == b"ftyp" and sniff(head) is None:
        return "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


class BodyDeadline:
    """ASGI middleware: a request must deliver its body within ``seconds``, plus one second for
    each ``min_rate`` bytes it has delivered (as Apache's mod_reqtimeout does), so that slow
    clients (trickling uploads) are cut off instead of holding a connection forever, while a
    big video on a slow line gets the time it needs. Once the body is in, waiting on the client
    has no deadline: a streamed or file answer listens for its client going away for as long as
    the answer takes."""

    def __init__(self, app, seconds: float, min_rate: float):
        self.app = app
        self.seconds = seconds
        self.min_rate = min_rate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_received = False

        async def receive_before_deadline():
            nonlocal body_received, deadline
            if body_received:
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise HTTPException(408, f"request body not received in time: at least {self.min_rate / 1000:g} kB/s "
                                         f"after the first {self.seconds:g} s") from None
            deadline += len(message.get("body", b"")) / self.min_rate
            body_received = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return await self.app(scope, receive_before_deadline, send)


class VideoLine:
    """Video analyses take turns: ``slots`` at once (each already uses every CPU, in its worker
    processes or ONNX Runtime's threads, so more at once would only slow each other and hold more
    memory), the others wait in arrival order, at most ``max_waiting`` of them."""

    def __init__(self, slots: int, max_waiting: int):
        self.slots, self.max_waiting = slots, max_waiting
        self.line: list[object] = []  # the analyses under way, then those waiting, in arrival order
        self._changed: asyncio.Condition | None = None  # made in the server's event loop

    def check_room(self) -> None:
        """Refuses one more analysis (503) where ``max_waiting`` wait already."""
        if len(self.line) - self.slots >= self.max_waiting:
            raise HTTPException(503, f"{len(self.line)} videos are being analysed or waiting already; try again later")

    @asynccontextmanager
    async def turn(self, on_wait: Callable[[int], None] = lambda ahead: None,
                   abandoned: threading.Event | None = None):
        """Waits for a slot, calling ``on_wait`` with the number of analyses ahead whenever it
        changes; leaves the line if ``abandoned`` is set meanwhile (`VideoError`)."""
        self.check_room()
        self._changed = self._changed or asyncio.Condition()
        ticket = object()
        self.line.append(ticket)
        try:
            async with self._changed:
                while (ahead := self.line.index(ticket)) >= self.slots:
                    on_wait(ahead)
                    if abandoned is not None and abandoned.is_set():
                        raise VideoError("abandoned by its client while waiting")
                    with suppress(TimeoutError):  # wakes up now and then to look at ``abandoned``
                        await asyncio.wait_for(self._changed.wait(), 0.5)
            yield
        finally:
            self.line.remove(ticket)
            async with self._changed:
                self._changed.notify_all()


def create_app(
    analyzer: Analyzer | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES, body_seconds: float = 30.0,
    body_min_rate: float = 50_000,
    smooth_s: float = SMOOTH_S, video_workers: int = 1, build: Callable[[], Analyzer] | None = None,
    cors_origins: Sequence[str] = (), video_slots: int = 1, max_waiting_videos: int = MAX_WAITING_VIDEOS,
    label_margin: float = LABEL_MARGIN,
) -> FastAPI:
    """The app; ``analyzer`` defaults to the bundled model with the default detector, loaded
    once. A request's body must come within ``body_seconds`` plus a second for each
    ``body_min_rate`` bytes received (`BodyDeadline`: 50 kB/s lets a 200 MB video take its time,
    and cuts off a trickle). ``smooth_s``: the time constant of the smoothing of live streams
    and uploaded videos (0: each frame's own); ``label_margin``: how far another expression must
    lead a face track's label to take its place (0: each frame's most probable; `ferlab.track.LabelHold`).
    ``video_workers`` > 1: a long uploaded video is analyzed in segments by that many worker
    processes (`ferlab.video_segments`), each building its analyzer with ``build`` (picklable,
    the same analyzer as ``analyzer``; default: the bundled model's); ``video_slots`` videos are
    analysed at once, up to ``max_waiting_videos`` others wait their turn (`VideoLine`), and
    more are refused (503). ``cors_origins``: the
    origins (``"http://localhost:3000"``, or ``"*"`` for any) whose web pages may call the API
    from the browser (CORS); by default only this server's own page can."""
    for origin in cors_origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"{origin!r} is not an origin: give scheme://host[:port] (no path), or * for any")
    streams = LiveStreams(smooth_s, label_margin=label_margin)
    videos = VideoLine(video_slots, max_waiting_videos)
    analyzer = analyzer or Analyzer()
    # OpenCV's and dlib's detectors must not search two pictures at once; BlazeFace's are analysed
    # side by side. A live stream's frames take turns on its tracks, and the table of streams
    # is changed by one request at a time.
    detector_lock = nullcontext() if get_detector(analyzer.detector).thread_safe else threading.Lock()
    streams_lock = threading.Lock()
    app = FastAPI(title="ferlab", version="0.1.0", description="Facial expression recognition, offline.")
    app.add_middleware(BodyDeadline, seconds=body_seconds, min_rate=body_min_rate)
    # A video's answer holds every analyzed frame (2.2 MB of JSON for 1,800 frames), which
    # compresses well; progress streams are flushed line by line, and videos are left as they are.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    if cors_origins:  # added last, so outermost: refusals and errors carry the headers too
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["Content-Disposition"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        hint = "; send the photo as multipart field 'file'" if where.startswith("body") else ""
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}{hint}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (resources.files("ferlab") / "assets" / "index.html").read_text()

    @app.get("/v1/health")
    def health() -> dict:
        """The server is up; the formats of annotated videos it writes (H.264 where it has PyAV),
        and whether they keep the video's sound (where it has PyAV)."""
        formats = [name for name in ANNOTATED_CODECS if name != "h264" or h264_available()]
        return {"status": "ok", "annotated_video": formats, "annotated_video_sound": h264_available()}

    @app.get("/v1/model")
    def model_card() -> dict:
        return analyzer.model.card

    @app.post("/v1/analyze")
    async def analyze(
        request: Request,
        file: UploadFile,
        stream: Annotated[str | None, Query(
            pattern=STREAM_NAME, description="the live stream this photo is the next frame of (letters, digits, "
            "_ and -): its faces then carry a \"track\" id, the same person's from frame to frame, and "
            "probabilities smoothed over time")] = None,
        time_s: Annotated[float | None, Query(
            ge=0, allow_inf_nan=False, description="the frame's time in the stream, in seconds "
            "(default: when the server received it)")] = None,
        explain: Annotated[bool, Query(
            description="also give each face an \"explanation\": the face the model saw with a map of where its "
            "label comes from (red: hiding that part lowers the label's odds), as a PNG data URL; about 530 "
            f"classifier passes a face, so for photos, not live streams, and for the {MAX_EXPLAINED_FACES} largest "
            "faces only")] = False,
        cropped: Annotated[bool, Query(
            description="the photo is one face cropped already (by a detector of your own, say): classified "
            "whole, without a search; its box is the whole photo")] = False,
        answer_format: Annotated[Literal["json", "csv"], Query(
            alias="format", description="csv: the rows `ferlab predict --format csv` writes, one per face, "
            "as a file to save (photos, not live streams or explanations)")] = "json",
    ):
        if answer_format == "csv" and (stream is not None or explain):
            raise HTTPException(422, "format=csv is for photos: a live stream's frames and explanations answer JSON")
        if cropped and stream is not None:
            raise HTTPException(422, "cropped is for one face crop at a time, not for the frames of a stream")
        if time_s is not None and stream is None:
            raise HTTPException(422, "time_s is the time of a frame in a stream: name the stream too (stream=NAME)")
        if explain and stream is not None:
            raise HTTPException(422, "explain takes hundreds of classifier passes a face: ask it for photos, not streams")
        refuse_declared_over(request, max_upload_bytes, f"upload over the {max_upload_bytes:,}-byte limit")
        content = await file.read(max_upload_bytes + 1)
        if len(content) > max_upload_bytes:
            raise HTTPException(413, f"upload over the {max_upload_bytes:,}-byte limit")
        if not content:
            raise HTTPException(400, f"{file.filename or 'upload'}: empty file")
        if sniff(content[:16]) is None:
            raise HTTPException(415, f"{file.filename or 'upload'}: not a JPEG, PNG, GIF, BMP, TIFF, WebP, AVIF or HEIC "
                                     "image")

        def run() -> dict:
            photo = decode_image(content, DECODE_MIN_SIDE, name=file.filename or "upload", max_pixels=MAX_PIXELS)
            finder = replace(analyzer, cropped=True) if cropped else analyzer
            if stream is None:
                with detector_lock:
                    faces, crops = finder.faces(photo.rgb, photo.factor)
            else:
                with streams_lock:
                    tracks, frame_s = streams.frame(stream, time_s)  # first: a frame out of order is not analyzed
                with tracks.lock, detector_lock:
                    records = analyzer.analyze_frame(photo.rgb, tracks, frame_s, photo.factor)
            if explain:  # seconds of classifier passes, which are thread-safe: other requests go on meanwhile
                records = explained_records(finder, faces, crops, max_faces=MAX_EXPLAINED_FACES)
            elif stream is None:
                records = finder.records(faces, finder.classify(faces, crops))
            body = {"faces": records, "width": photo.width, "height": photo.height}
            return body if stream is None else body | {"stream": stream}

        try:
            body = await run_in_threadpool(run)
        except (ImageError, StreamError) as error:
            raise HTTPException(422, str(error)) from None
        if answer_format == "csv":
            name = file.filename or "upload"
            return csv_file(CSV_HEADER, csv_rows(name, body["faces"]), f"{Path(name).stem}.csv")
        return body

    @app.post("/v1/analyze-video")
    async def analyze_video_upload(
        request: Request,
        file: UploadFile,
        every: Annotated[int | None, Query(
            ge=1, description="analyze every k-th frame (default: 1, or as few as keep the analysis under "
            f"{MAX_VIDEO_FRAMES:,} frames)")] = None,
        progress: Annotated[bool, Query(
            description="answer in JSON lines as the analysis goes: {\"analyzed\": n, \"of\": about how many} "
            "about twice a second (with \"queued\": the analyses ahead, while it waits its turn), then "
            "{\"result\": ...} (the answer without progress) or {\"error\": ...}")] = False,
        answer_format: Annotated[Literal["json", "csv", "srt", "vtt", "mp4", "webm", "h264"], Query(
            alias="format", description="csv: the timeline `ferlab video` writes, one row per face per analyzed "
            "frame with its track; srt or vtt: each track's label over time as subtitles (`ferlab video "
            "--subtitles`), for video players; mp4, webm or h264: the video with each face boxed, labelled and "
            "numbered by its track, as `ferlab video --annotate-video` draws it (WebM and H.264, an MP4, play in "
            "web browsers; H.264 where the server has PyAV); each as a file to save, not with progress")] = "json",
        sound: Annotated[bool, Query(description=SOUND_HELP)] = True,
    ):
        if answer_format != "json" and progress:
            raise HTTPException(422, f"progress answers in JSON lines: ask for format={answer_format} without progress")
        refuse_declared_over(request, MAX_VIDEO_BYTES, f"video over the {MAX_VIDEO_BYTES:,}-byte limit")
        videos.check_room()  # before the upload is read
        name = file.filename or "upload"
        if answer_format == "h264":
            refuse_without_h264()  # before the upload is read
        folder, path = await saved_video(file)  # the folder is removed once the analysis is over
        if answer_format in ANNOTATED_CODECS:
            return await annotated_answer(partial(annotated_video, analyzer, path, name, every, smooth_s, answer_format,
                                                  detector_lock, video_workers, build, sound, label_margin),
                                          name, path, folder, answer_format)
        counter = {"analyzed": 0, "of": 0}  # frames analyzed, about how many in all; "queued": analyses ahead
        abandoned = threading.Event()  # set when the client of a progress stream goes away

        async def analysis() -> dict:
            try:
                async with videos.turn(lambda ahead: counter.update(queued=ahead), abandoned):
                    counter.pop("queued", None)
                    return await run_in_threadpool(video_timeline, analyzer, path, name, every, smooth_s, detector_lock,
                                                   counter, video_workers, build, abandoned, label_margin)
            except VideoError as error:
                raise HTTPException(422, str(error).replace(str(path), name)) from None
            finally:
                folder.cleanup()

        if answer_format == "csv":
            result = await analysis()
            rows = [row for frame in result["frames"] for row in timeline_rows(frame["frame"], frame["time_s"],
                                                                              frame["faces"])]
            return csv_file(TIMELINE_HEADER, rows, f"{Path(name).stem}.timeline.csv")
        if answer_format in SUBTITLE_TYPES:
            result = await analysis()
            cues = track_cues(result["frames"], result["fps"], result["every"])
            return text_file(subtitle_text(cues, answer_format, result["width"], result["height"]),
                             SUBTITLE_TYPES[answer_format], f"{Path(name).stem}.emotions.{answer_format}")
        if not progress:
            return await analysis()

        async def lines():
            task = asyncio.ensure_future(analysis())
            try:
                while not task.done():
                    await asyncio.wait([task], timeout=0.5)
                    if not task.done():
                        yield json.dumps(counter) + "\n"
            finally:
                if not task.done():  # the client went away (closed the page): stop analysing for no one
                    abandoned.set()
                    task.add_done_callback(lambda done: done.cancelled() or done.exception())
            error = task.exception()
            if error is None:
                yield json.dumps({"result": task.result()}) + "\n"
            else:
                status = error.status_code if isinstance(error, HTTPException) else 500
                yield json.dumps({"error": {"status": status, "message": getattr(error, "detail", str(error))}}) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/v1/draw-video")
    async def draw_video_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the video /v1/analyze-video analysed")],
        result: Annotated[UploadFile, File(description="the JSON /v1/analyze-video answered for it (its every and "
                                                       "frames are read), as a file field")],
        answer_format: Annotated[Literal["mp4", "webm", "h264"], Query(
            alias="format", description="as /v1/analyze-video's annotated copies")] = "h264",
        sound: Annotated[bool, Query(description=SOUND_HELP)] = True,
    ):
        """The annotated copy of ``file`` that /v1/analyze-video's ``format`` gives, drawn from
        ``result`` (the JSON /v1/analyze-video answered for this video: its ``every`` and
        ``frames`` are read) instead of analysing the video again: for a 60 s 1280x720 clip in
        H.264, 18 s instead of 47 s (`benchmarks/serve_video.py`). A live session's JSON (the
        page's, ``"live": true``) is drawn into its recording (``file``) by time."""
        refuse_declared_over(request, MAX_VIDEO_BYTES + MAX_DRAWING_BYTES,
                             f"video over the {MAX_VIDEO_BYTES:,}-byte limit")
        videos.check_room()
        if answer_format == "h264":
            refuse_without_h264()
        text = await result.read(MAX_DRAWING_BYTES + 1)
        if len(text) > MAX_DRAWING_BYTES:
            raise HTTPException(413, f"result over the {MAX_DRAWING_BYTES:,}-byte limit")
        try:
            answer = parse_answer(text)
        except VideoError as error:
            raise HTTPException(422, f"result: {error}: send the JSON /v1/analyze-video answered for this video") from None
        name = file.filename or "upload"
        folder, path = await saved_video(file)

        def draw() -> Path:
            _frames_to_analyze(path, name, answer.every)  # the same limit on the work as an analysis
            faces, every = answer_faces(answer, path)  # a live session's: by the time of each of its recording's frames
            return draw_video(path, faces, every, path.with_name(f"drawn.{ANNOTATED_SUFFIXES[answer_format]}"),
                              answer_format, sound)

        return await annotated_answer(draw, name, path, folder, answer_format)

    async def annotated_answer(write: Callable[[], Path], name: str, path: Path, folder: tempfile.TemporaryDirectory,
                               answer_format: str) -> FileResponse:
        """The annotated copy of the upload ``name`` (saved at ``path``) that ``write`` writes in
        its turn, as a file to save; ``folder`` is removed once it is sent, or on a failure."""
        try:
            async with videos.turn():
                copy = await run_in_threadpool(write)
        except VideoError as error:
            folder.cleanup()
            raise HTTPException(422, str(error).replace(str(path), name)) from None
        except BaseException:
            folder.cleanup()
            raise
        suffix = ANNOTATED_SUFFIXES[answer_format]
        return FileResponse(copy, media_type=f"video/{suffix}", background=BackgroundTask(folder.cleanup),
                            filename=download_name(f"{Path(name).stem}.annotated.{suffix}"))

    return app


def refuse_declared_over(request: Request, limit: int, message: str) -> None:
    """413 with ``message`` before the body is read, where the request declares one over
    ``limit`` bytes and room for the multipart framing."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, message)


def refuse_without_h264() -> None:
    """422 where the server has no PyAV to write H.264 (`check_h264` says how to get it)."""
    try:
        check_h264()
    except VideoError as error:
        raise HTTPException(422, str(error)) from None


async def saved_video(file: UploadFile) -> tuple[tempfile.TemporaryDirectory, Path]:
    """The uploaded video written to disk as it comes (FFmpeg reads a file), in a temporary
    folder the caller removes; refused (`HTTPException`) when empty, not a video or too big."""
    name = file.filename or "upload"
    head = await file.read(16)
    if not head:
        raise HTTPException(400, f"{name}: empty file")
    if sniff_video(head) is None:
        raise HTTPException(415, f"{name}: not an MP4, MOV, WebM, MKV or AVI video")
    folder = tempfile.TemporaryDirectory(prefix="ferlab-video-")
    path = Path(folder.name) / "upload"
    try:
        size = len(head)
        with open(path, "wb") as copy:
            copy.write(head)
            while chunk := await file.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_VIDEO_BYTES:
                    raise HTTPException(413, f"video over the {MAX_VIDEO_BYTES:,}-byte limit")
                copy.write(chunk)
    except BaseException:
        folder.cleanup()
        raise
    return folder, path


def download_name(filename: str) -> str:
    """``filename`` with what is not a letter, digit, dot or dash replaced, safe in a header."""
    return re.sub(r"[^\w.-]", "_", filename, flags=re.ASCII)


def csv_file(header: list[str], rows: list[list], filename: str) -> Response:
    """A CSV answer that a browser saves as ``filename`` (`download_name`)."""
    text = io.StringIO()
    table = csv.writer(text)
    table.writerow(header)
    table.writerows(rows)
    return text_file(text.getvalue(), "text/csv; charset=utf-8", filename)


def text_file(text: str, media_type: str, filename: str) -> Response:
    """A text answer that a browser saves as ``filename`` (`download_name`)."""
    return Response(text, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download_name(filename)}"'})


def _frames_to_analyze(path: Path, name: str, every: int | None) -> tuple[int, int, int, int]:
    """Which frames of the video at ``path`` to analyze, ``every`` k-th (default: as few as keep
    the analysis under `MAX_VIDEO_FRAMES`), with its frame count (an estimate, 0 where unknown),
    width and height."""
    capture, _, _ = open_source(path)
    total = frame_count(capture) or 0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    least_every = max(1, -(-total // MAX_VIDEO_FRAMES))
    if every is not None and every < least_every:
        raise VideoError(f"{name}: {total:,} frames at every={every} is over the {MAX_VIDEO_FRAMES:,}-frame limit; "
                         f"ask for every={least_every} or more")
    return every or least_every, total, width, height


def annotated_video(analyzer: Analyzer, path: Path, name: str, every: int | None, smooth_s: float, codec: str, lock,
                    workers: int = 1, build: Callable[[], Analyzer] | None = None, sound: bool = True,
                    label_margin: float = LABEL_MARGIN) -> Path:
    """The copy of the video at ``path`` that `ferlab video --annotate-video` ``codec`` writes
    (its faces boxed, labelled and numbered by track; with its sound unless not ``sound``), in
    ``path``'s folder; frames as `video_timeline` analyzes them; ``lock`` is held throughout in
    this process."""
    every = _frames_to_analyze(path, name, every)[0]
    if workers > 1 and plan_segments(path, every, None, smooth_s, workers, label_margin):
        result = analyze_video(path, build or build_analyzer, path.parent, every=every, annotate=codec,
                               progress=False, smooth_s=smooth_s, workers=workers, sound=sound, label_margin=label_margin)
    else:
        with lock:
            result = analyze_video(path, analyzer, path.parent, every=every, annotate=codec, progress=False,
                                   smooth_s=smooth_s, sound=sound, label_margin=label_margin)
    return Path(result["annotated"])


def video_timeline(analyzer: Analyzer, path: Path, name: str, every: int | None, smooth_s: float, lock,
                   counter: dict[str, int], workers: int = 1, build: Callable[[], Analyzer] | None = None,
                   abandoned: threading.Event | None = None, label_margin: float = LABEL_MARGIN) -> dict:
    """The faces of every ``every``-th frame of the video at ``path`` (default: as few as keep
    it under `MAX_VIDEO_FRAMES`), tracked and smoothed as `ferlab video` does, with a
    summary per track; ``lock`` is held while a frame is analyzed here; ``counter`` keeps the
    count of frames analyzed and about how many there are in all. With ``workers`` > 1, a
    long video is analyzed in segments by worker processes that each call ``build``. Once
    ``abandoned`` is set, the analysis stops at its next count (`VideoError`)."""
    every, total, width, height = _frames_to_analyze(path, name, every)
    segments = plan_segments(path, every, None, smooth_s, workers, label_margin)
    counter["of"] = -(-total // every)

    def count(analyzed: int) -> None:  # never backwards: the workers' count runs ahead of the frames in order
        if abandoned is not None and abandoned.is_set():
            raise VideoError(f"{name}: abandoned by its client")
        counter["analyzed"] = max(counter["analyzed"], min(analyzed, counter["of"] or analyzed))

    video = (SegmentedVideo(segments, build or build_analyzer, workers, on_progress=count) if segments
             else VideoStream(path, analyzer, every, smooth_s=smooth_s, label_margin=label_margin))
    with video:
        frames = []
        for frame in video if segments else _locked_frames(video, lock):
            frames.append({"frame": frame.index, "time_s": round(frame.time_s, 3), "faces": frame.faces})
            count(len(frames))
            if len(frames) > MAX_VIDEO_FRAMES:  # the frame count was an estimate
                raise VideoError(f"{name}: over {MAX_VIDEO_FRAMES:,} frames at every={every}; ask for a larger every")
    if not frames:
        raise VideoError(f"{name}: the video has no readable frames")
    return video_answer(frames, every, video.fps, video.frames, width, height)


def _locked_frames(video: VideoStream, lock) -> Iterator:
    """``video``'s frames, each analyzed under ``lock`` (the app's detector lock)."""
    frames = iter(video)
    while True:
        with lock:
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


def serve(host: str, port: int, analyzer: Analyzer, smooth_s: float = SMOOTH_S, video_workers: int = 1,
          build: Callable[[], Analyzer] | None = None, cors_origins: Sequence[str] = (),
          label_margin: float = LABEL_MARGIN) -> None:
    import uvicorn

    app = create_app(analyzer, smooth_s=smooth_s, video_workers=video_workers, build=build, cors_origins=cors_origins,
                     label_margin=label_margin)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=5, limit_concurrency=1000)
