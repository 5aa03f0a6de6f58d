import base64
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS
from ferlab.predict import Analyzer
from ferlab.serve import LiveStreams, create_app

from .conftest import ASTRONAUT_FACE


@pytest.fixture
def client(tiny_model):
    return TestClient(create_app(Analyzer(load_model(tiny_model)), max_upload_bytes=200_000))


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, "PNG")
    return buffer.getvalue()


def test_analyze_a_real_face(client, astronaut):
    response = client.post("/v1/analyze", files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")})
    assert response.status_code == 200
    body = response.json()
    assert body["width"] == 512 and len(body["faces"]) == 1
    assert set(body["faces"][0]["probabilities"]) == set(EMOTIONS)


def test_a_photo_can_be_answered_as_ferlab_predicts_csv(client, astronaut, tmp_path):
    from ferlab.predict import write_results

    upload = {"file": ("my photo.jpg", astronaut.read_bytes(), "image/jpeg")}
    faces = client.post("/v1/analyze", files=upload).json()["faces"]
    response = client.post("/v1/analyze", params={"format": "csv"}, files=upload)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="my_photo.csv"'
    write_results([{"path": "my photo.jpg", "faces": faces}], tmp_path / "faces.csv", "csv")
    assert response.text.splitlines() == (tmp_path / "faces.csv").read_text().splitlines()
    assert len(response.text.splitlines()) == 2  # the header and the one face
    for params in ({"format": "csv", "explain": "true"}, {"format": "csv", "stream": "cam"}):
        refused = client.post("/v1/analyze", params=params, files=upload)
        assert refused.status_code == 422 and "format=csv is for photos" in refused.json()["error"]["message"]
    assert client.post("/v1/analyze", params={"format": "xml"}, files=upload).status_code == 422


def test_a_big_photo_is_answered_in_its_own_pixels(tiny_model, astronaut):
    big = io.BytesIO()
    Image.open(astronaut).resize((4096, 4096)).save(big, "JPEG", quality=85)
    client = TestClient(create_app(Analyzer(load_model(tiny_model))))
    body = client.post("/v1/analyze", files={"file": ("big.jpg", big.getvalue(), "image/jpeg")}).json()
    assert (body["width"], body["height"]) == (4096, 4096) and len(body["faces"]) == 1
    assert body["faces"][0]["box"][0] == pytest.approx(8 * ASTRONAUT_FACE[0], abs=8 * 20)


def test_an_iphone_photo_is_read(client, astronaut):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    heic = io.BytesIO()
    Image.open(astronaut).save(heic, "HEIF", quality=90)
    response = client.post("/v1/analyze", files={"file": ("IMG_0001.HEIC", heic.getvalue(), "image/heic")})
    assert response.status_code == 200 and len(response.json()["faces"]) == 1


def test_a_face_crop_is_classified_whole(client):
    body = client.post("/v1/analyze", params={"cropped": "true"},
                       files={"file": ("crop.png", png(60, 40), "image/png")}).json()  # grey: no face to find
    assert [face["box"] for face in body["faces"]] == [[0, 0, 60, 40]]
    assert client.post("/v1/analyze", files={"file": ("crop.png", png(60, 40), "image/png")}).json()["faces"] == []
    refused = client.post("/v1/analyze", params={"cropped": "true", "stream": "s"},
                          files={"file": ("crop.png", png(60, 40), "image/png")})
    assert refused.status_code == 422 and "not for the frames of a stream" in refused.json()["error"]["message"]


def test_explain_gives_each_face_a_picture_of_where_its_label_comes_from(client, astronaut):
    response = client.post("/v1/analyze", params={"explain": "true"},
                           files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")})
    assert response.status_code == 200
    face = response.json()["faces"][0]
    assert face["explanation"]["label"] == face["label"] and face["explanation"]["units"] == "log_odds"
    prefix = "data:image/png;base64,"
    assert face["explanation"]["image"].startswith(prefix)
    picture = Image.open(io.BytesIO(base64.b64decode(face["explanation"]["image"][len(prefix):])))
    assert picture.size == (144, 144) and picture.mode == "RGB"
    plain = client.post("/v1/analyze", files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")}).json()
    assert "explanation" not in plain["faces"][0]
    assert plain["faces"][0]["probabilities"] == face["probabilities"]


def test_health_model_page_and_docs(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and {"mp4", "webm"} <= set(health["annotated_video"])
    assert client.get("/v1/model").json()["model"] == "paper_cnn"
    page = client.get("/")
    assert page.status_code == 200 and "/v1/analyze" in page.text and "getUserMedia" in page.text
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


def test_pages_of_the_origins_named_may_call_the_api_from_the_browser(tiny_model, astronaut):
    analyzer = Analyzer(load_model(tiny_model))
    client = TestClient(create_app(analyzer, cors_origins=["http://localhost:3000"]))
    mine, theirs = {"Origin": "http://localhost:3000"}, {"Origin": "https://elsewhere.example"}
    preflight = client.options("/v1/analyze", headers=mine | {"Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    upload = {"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")}
    answer = client.post("/v1/analyze", headers=mine, files=upload)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = client.post("/v1/analyze", headers=mine, files={"file": ("x.png", b"text", "image/png")})
    assert refused.status_code == 415 and "access-control-allow-origin" in refused.headers  # errors are readable too
    assert "access-control-allow-origin" not in client.post("/v1/analyze", headers=theirs, files=upload).headers
    closed = TestClient(create_app(analyzer))  # by default: no page of another origin
    assert "access-control-allow-origin" not in closed.post("/v1/analyze", headers=mine, files=upload).headers
    anyone = TestClient(create_app(analyzer, cors_origins=["*"]))
    assert anyone.get("/v1/health", headers=theirs).headers["access-control-allow-origin"] == "*"
    with pytest.raises(ValueError, match="is not an origin"):
        create_app(analyzer, cors_origins=["http://localhost:3000/app"])


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ({"file": ("x.jpg", b"", "image/jpeg")}, 400, "empty file"),
        ({"file": ("x.jpg", b"GIF89a but really text", "image/jpeg")}, 422, "not an image file"),
        ({"file": ("x.png", png(64, 64)[:60], "image/png")}, 422, "corrupt or truncated"),
        ({"file": ("x.png", b"hello, I am text", "image/png")}, 415, "not a JPEG, PNG"),
        ({"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"0" * 300_000, "image/png")}, 413, "byte limit"),
        ({"other": ("x.png", png(10, 10), "image/png")}, 422, "multipart field 'file'"),
    ],
)
def test_bad_requests_get_json_errors(client, files, status, message):
    response = client.post("/v1/analyze", files=files)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_too_many_pixels_is_refused_without_decoding(client):
    big = png(8000, 7000, "1")  # 56 megapixels, small on the wire
    response = client.post("/v1/analyze", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 422 and "pixel limit" in response.json()["error"]["message"]


def test_a_50_megapixel_phone_photo_is_taken(tiny_model, astronaut):
    photo = io.BytesIO()
    Image.open(astronaut).resize((8160, 6120)).save(photo, "JPEG", quality=70)  # a 50-megapixel phone's size
    body = TestClient(create_app(Analyzer(load_model(tiny_model)))).post(
        "/v1/analyze", files={"file": ("big.jpg", photo.getvalue(), "image/jpeg")}).json()
    assert (body["width"], body["height"]) == (8160, 6120) and len(body["faces"]) >= 1


class Counting:
    """A detector that finds no face, slowly, counting the searches under way at once."""

    name = "counting"
    thread_safe = True
    active = peak = 0
    guard = threading.Lock()

    def __call__(self, rgb, near=None):
        with Counting.guard:
            Counting.active += 1
            Counting.peak = max(Counting.peak, Counting.active)
        time.sleep(0.3)
        with Counting.guard:
            Counting.active -= 1
        return []


def peak_searches(tiny_model, monkeypatch, thread_safe: bool, params: list[dict]) -> int:
    """The most searches under way at once while one request per ``params`` is sent at once."""
    from ferlab.detect import DETECTORS, get_detector

    monkeypatch.setattr(Counting, "thread_safe", thread_safe)
    monkeypatch.setattr(Counting, "peak", 0)
    monkeypatch.setitem(DETECTORS, "counting", Counting)
    get_detector.cache_clear()
    try:
        client = TestClient(create_app(Analyzer(load_model(tiny_model), detector="counting", margin=0.1)))
        with ThreadPoolExecutor(len(params)) as pool:
            answers = list(pool.map(lambda p: client.post("/v1/analyze", params=p, files={"file": ("a.png", png(64, 64))}),
                                    params))
    finally:
        get_detector.cache_clear()
    assert [a.json()["faces"] for a in answers] == [[]] * len(params)
    return Counting.peak


@pytest.mark.parametrize("thread_safe", [True, False])
def test_photos_are_analysed_side_by_side_only_by_a_thread_safe_detector(tiny_model, monkeypatch, thread_safe):
    assert peak_searches(tiny_model, monkeypatch, thread_safe, [{}, {}]) == (2 if thread_safe else 1)


def test_live_streams_are_analysed_side_by_side_but_a_streams_frames_take_turns(tiny_model, monkeypatch):
    assert peak_searches(tiny_model, monkeypatch, True, [{"stream": "a"}, {"stream": "b"}]) == 2
    assert peak_searches(tiny_model, monkeypatch, True, [{"stream": "a"}, {"stream": "a"}]) == 1


def test_malformed_multipart_and_unknown_paths(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/v1/analyze", content=b"--xyz\r\ngarbage", headers=headers)
    assert response.status_code in (400, 422) and "error" in response.json()
    assert client.get("/../../etc/passwd").status_code == 404
    assert client.get("/static/../../etc/passwd").status_code == 404


def faces_of(client, photo: bytes, **params) -> list[dict]:
    response = client.post("/v1/analyze", params=params, files={"file": ("a.jpg", photo, "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()["faces"]


def test_a_live_stream_keeps_track_ids_and_smooths(tiny_model, astronaut):
    client = TestClient(create_app(Analyzer(load_model(tiny_model)), smooth_s=1000.0))
    photo = astronaut.read_bytes()
    buffer = io.BytesIO()
    Image.open(astronaut).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buffer, "JPEG")
    mirrored = buffer.getvalue()
    raw, raw_mirrored = faces_of(client, photo)[0], faces_of(client, mirrored)[0]
    assert "track" not in raw  # a photo on its own has no track
    assert max(abs(raw["probabilities"][e] - raw_mirrored["probabilities"][e]) for e in EMOTIONS) > 1e-3

    first = faces_of(client, photo, stream="cam-1", time_s=0.0)[0]
    then = faces_of(client, mirrored, stream="cam-1", time_s=0.04)[0]
    assert first["track"] == then["track"] == 0 and first["probabilities"] == raw["probabilities"]
    # A time constant of 1,000 s: 40 ms later the mirrored frame has barely moved the average.
    assert then["probabilities"] == pytest.approx(raw["probabilities"], abs=1e-3)
    # Another stream starts its own tracks, from the frame it is given.
    other = faces_of(client, mirrored, stream="cam-2")[0]
    assert other["track"] == 0 and other["probabilities"] == raw_mirrored["probabilities"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stream": "a b"}, "stream"),
        ({"stream": "x" * 65}, "stream"),
        ({"stream": "a", "time_s": "-1"}, "time_s"),
        ({"stream": "a", "time_s": "nan"}, "time_s"),
        ({"time_s": "1.0"}, "name the stream too"),
        ({"stream": "a", "explain": "true"}, "not streams"),
    ],
)
def test_bad_stream_parameters_get_json_errors(client, astronaut, params, message):
    response = client.post("/v1/analyze", params=params, files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")})
    assert response.status_code == 422
    assert message in response.json()["error"]["message"]
    assert "multipart field" not in response.json()["error"]["message"]


def test_live_streams_are_forgotten_when_idle_or_too_many():
    now = [0.0]
    streams = LiveStreams(max_streams=2, idle_s=60.0, clock=lambda: now[0])
    first, _ = streams.frame("a")
    now[0] = 10.0
    assert streams.frame("a") == (first, 10.0)  # the same tracks, timed from the stream's first frame
    streams.frame("b")
    streams.frame("a")
    streams.frame("c")  # over two streams: "b", the least recently used, goes
    assert len(streams) == 2 and streams.frame("a")[0] is first
    now[0] = 100.0  # "a" idle for 90 s: forgotten, and starts anew
    assert streams.frame("a") == (streams.frame("a")[0], 0.0) and streams.frame("a")[0] is not first
    assert len(streams) == 1
    with pytest.raises(ValueError, match="0 or more seconds"):
        LiveStreams(smooth_s=-1)


def test_a_stream_takes_its_frames_in_time_order(client, astronaut):
    photo = {"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")}
    assert client.post("/v1/analyze", params={"stream": "s", "time_s": 2.0}, files=photo).status_code == 200
    late = client.post("/v1/analyze", params={"stream": "s", "time_s": 1.0}, files=photo)
    assert late.status_code == 422 and "time order" in late.json()["error"]["message"]
    again = client.post("/v1/analyze", params={"stream": "s", "time_s": 2.5}, files=photo)
    assert again.status_code == 200 and again.json()["faces"][0]["track"] == 0  # the refusal lost nothing


def write_clip(path, astronaut, frames: int, codec: str = "mp4v") -> bytes:
    import cv2

    face = cv2.cvtColor(np.asarray(Image.open(astronaut).convert("RGB")), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, face.shape[1::-1])
    for i in range(frames):
        writer.write(face if i < frames - 2 else face * 0 + 127)  # the last two frames without the face
    writer.release()
    return path.read_bytes()


@pytest.mark.parametrize("suffix, codec", [("mp4", "mp4v"), ("webm", "VP80"), ("avi", "MJPG")])
def test_a_video_upload_gets_its_timeline_and_tracks(client, astronaut, tmp_path, suffix, codec):
    clip = write_clip(tmp_path / f"clip.{suffix}", astronaut, 6, codec)
    response = client.post("/v1/analyze-video", files={"file": (f"clip.{suffix}", clip, "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["every"] == 1 and body["frames_read"] == 6 and (body["width"], body["height"]) == (512, 512)
    assert [f["frame"] for f in body["frames"]] == list(range(6))
    assert [f["time_s"] for f in body["frames"]] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], abs=0.01)
    assert response.headers["content-encoding"] == "gzip" and response.num_bytes_downloaded < len(response.content) / 3
    assert [[face["track"] for face in f["faces"]] for f in body["frames"]] == [[0]] * 4 + [[], []]
    assert [(t["track"], t["analyzed_frames"], t["first_s"], t["last_s"]) for t in body["tracks"]] == [(0, 4, 0.0, 0.3)]
    every = client.post("/v1/analyze-video", params={"every": 2}, files={"file": ("clip", clip, "video/mp4")}).json()
    assert [f["frame"] for f in every["frames"]] == [0, 2, 4] and every["every"] == 2


def test_a_video_can_be_answered_as_the_timeline_csv_ferlab_video_writes(tiny_model, client, astronaut, tmp_path):
    from ferlab.video import analyze_video

    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    response = client.post("/v1/analyze-video", params={"format": "csv"}, files={"file": ("clip.mp4", clip, "video/mp4")})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="clip.timeline.csv"'
    analyze_video(tmp_path / "clip.mp4", Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False)
    assert response.text.splitlines() == (tmp_path / "out" / "clip.timeline.csv").read_text().splitlines()
    assert len(response.text.splitlines()) == 1 + 4  # the header and the four frames with the face
    refused = client.post("/v1/analyze-video", params={"format": "csv", "progress": "true"},
                          files={"file": ("clip.mp4", clip, "video/mp4")})
    assert refused.status_code == 422 and "without progress" in refused.json()["error"]["message"]

    # the subtitles `ferlab video --subtitles` writes
    analyze_video(tmp_path / "clip.mp4", Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False,
                  subtitles=["srt", "vtt"])
    for form, media_type in (("srt", "application/x-subrip"), ("vtt", "text/vtt")):
        response = client.post("/v1/analyze-video", params={"format": form},
                               files={"file": ("clip.mp4", clip, "video/mp4")})
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
        assert response.headers["content-disposition"] == f'attachment; filename="clip.emotions.{form}"'
        assert response.text == (tmp_path / "out" / f"clip.emotions.{form}").read_text()


@pytest.mark.parametrize("codec, suffix", [("webm", "webm"), ("mp4", "mp4"), ("h264", "mp4")])
def test_a_video_can_be_answered_as_the_annotated_copy_ferlab_video_draws(client, astronaut, tmp_path, codec, suffix):
    import cv2

    if codec == "h264":
        pytest.importorskip("av")
        assert "h264" in client.get("/v1/health").json()["annotated_video"]
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    response = client.post("/v1/analyze-video", params={"format": codec, "every": 2},
                           files={"file": ("my clip.mp4", clip, "video/mp4")})
    assert response.status_code == 200 and response.headers["content-type"] == f"video/{suffix}"
    assert response.headers["content-disposition"] == f'attachment; filename="my_clip.annotated.{suffix}"'
    (tmp_path / f"annotated.{suffix}").write_bytes(response.content)
    copy = cv2.VideoCapture(str(tmp_path / f"annotated.{suffix}"))
    frames = []
    while (frame := copy.read()[1]) is not None:
        frames.append(frame)
    assert len(frames) == 3 and frames[0].shape == (512, 512, 3)  # frames 0, 2 and 4
    source = cv2.imread(str(astronaut))
    assert np.abs(frames[0].astype(int) - source).mean() > 1  # boxes, labels and bars drawn on it
    refused = client.post("/v1/analyze-video", params={"format": codec, "progress": "true"},
                          files={"file": ("clip.mp4", clip, "video/mp4")})
    assert refused.status_code == 422 and "without progress" in refused.json()["error"]["message"]
    broken = client.post("/v1/analyze-video", params={"format": codec}, files={"file": ("c.mp4", clip[:200], "video/mp4")})
    assert broken.status_code == 422 and broken.json()["error"]["message"].startswith("c.mp4: not a video")


def decoded(content: bytes, tmp_path, name: str) -> list[np.ndarray]:
    import cv2

    (tmp_path / name).write_bytes(content)
    capture, frames = cv2.VideoCapture(str(tmp_path / name)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    return frames


def test_the_annotated_copy_can_be_drawn_from_the_analysis_answer(client, astronaut, tmp_path):
    """What the page does: it has the answer, so the server only draws it (no second analysis)."""
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    upload = {"file": ("my clip.mp4", clip, "video/mp4")}
    answer = client.post("/v1/analyze-video", params={"every": 2}, files=upload).content
    analysed = client.post("/v1/analyze-video", params={"format": "mp4", "every": 2}, files=upload)
    drawn = client.post("/v1/draw-video", params={"format": "mp4"},
                        files={**upload, "result": ("result.json", answer, "application/json")})
    assert drawn.status_code == 200, drawn.text
    assert drawn.headers["content-disposition"] == 'attachment; filename="my_clip.annotated.mp4"'
    copies = decoded(analysed.content, tmp_path, "analysed.mp4"), decoded(drawn.content, tmp_path, "drawn.mp4")
    assert len(copies[1]) == 3 and all(np.array_equal(a, b) for a, b in zip(*copies, strict=True))


def test_progress_of_a_video_that_does_not_say_its_length(client, astronaut, tmp_path):
    from ferlab.imageio import load_image

    from .conftest import write_webm_without_length

    clip = write_webm_without_length(tmp_path / "recording.webm", load_image(astronaut))
    response = client.post("/v1/analyze-video", params={"progress": "true"},
                           files={"file": ("recording.webm", clip, "video/webm")})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert all(line.get("of", 0) == 0 for line in lines[:-1]) and len(lines[-1]["result"]["frames"]) == 6
    from ferlab.serve import _frames_to_analyze

    assert _frames_to_analyze(tmp_path / "recording.webm", "recording.webm", None)[:2] == (1, 0)  # unknown: 0


def test_a_browsers_recording_is_not_thinned_for_its_time_base(client, tmp_path):
    """FFmpeg gives a MediaRecorder WebM 1000 frames a second (its time base): 4 s would pass
    for 4,000 frames, over the limit, and only every third frame would have been analysed."""
    from ferlab.serve import _frames_to_analyze

    from .conftest import write_timed_video

    pictures, times_ms = [np.full((48, 64, 3), 90, np.uint8)] * 41, range(0, 4100, 100)
    write_timed_video(tmp_path / "recording.webm", pictures, times_ms)
    assert _frames_to_analyze(tmp_path / "recording.webm", "recording.webm", None)[:2] == (1, 0)  # unknown: 0
    response = client.post("/v1/analyze-video", files={"file": ("recording.webm", (tmp_path / "recording.webm").read_bytes(),
                                                                "video/webm")})
    assert response.status_code == 200 and len(response.json()["frames"]) == 41


def test_a_live_sessions_recording_is_drawn_by_time(client, astronaut, tmp_path):
    from ferlab.imageio import load_image

    from .conftest import write_webm_without_length

    recording = write_webm_without_length(tmp_path / "session.webm", load_image(astronaut), frames=10)
    upload = {"file": ("session.webm", recording, "video/webm")}
    face = client.post("/v1/analyze", files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")}).json()["faces"][0]
    session = {"every": 1, "live": True, "frames": [{"frame": 0, "time_s": 0.0, "faces": [face | {"track": 0}]}]}

    def draw(answer: dict):
        return client.post("/v1/draw-video", params={"format": "mp4"},
                           files={**upload, "result": ("session.json", json.dumps(answer), "application/json")})

    drawn, bare = draw(session), draw(session | {"frames": []})
    assert drawn.status_code == 200, drawn.text
    pairs = zip(decoded(drawn.content, tmp_path, "drawn.mp4"), decoded(bare.content, tmp_path, "bare.mp4"), strict=True)
    assert [np.abs(a.astype(int) - b).mean() > 0.8 for a, b in pairs] == [True] * 6 + [False] * 4  # to 0.5 s


def test_annotated_copies_keep_the_uploads_sound_unless_asked_not_to(client, astronaut, tmp_path):
    av = pytest.importorskip("av")
    from ferlab.imageio import load_image

    from .conftest import write_video_with_sound

    write_video_with_sound(tmp_path / "talk.mp4", seconds=0.4, picture=load_image(astronaut))
    upload = {"file": ("talk.mp4", (tmp_path / "talk.mp4").read_bytes(), "video/mp4")}
    assert client.get("/v1/health").json()["annotated_video_sound"] is True

    def sound_of(response) -> list[str]:
        assert response.status_code == 200, response.text
        (tmp_path / "copy.mp4").write_bytes(response.content)
        with av.open(str(tmp_path / "copy.mp4")) as copy:
            return [stream.codec_context.name for stream in copy.streams.audio]

    assert sound_of(client.post("/v1/analyze-video", params={"format": "h264"}, files=upload)) == ["aac"]
    assert sound_of(client.post("/v1/analyze-video", params={"format": "h264", "sound": "false"}, files=upload)) == []
    answer = client.post("/v1/analyze-video", files=upload).content
    drawing = {**upload, "result": ("result.json", answer, "application/json")}
    assert sound_of(client.post("/v1/draw-video", params={"format": "mp4"}, files=drawing)) == ["aac"]
    assert sound_of(client.post("/v1/draw-video", params={"format": "mp4", "sound": "false"}, files=drawing)) == []


def test_drawing_refuses_what_is_not_this_videos_answer(client, astronaut, tmp_path, monkeypatch):
    from ferlab import serve

    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    answer = client.post("/v1/analyze-video", files={"file": ("clip.mp4", clip, "video/mp4")}).json()

    def refused(result, video: bytes = clip) -> tuple[int, str]:
        text = result if isinstance(result, bytes) else json.dumps(result).encode()
        response = client.post("/v1/draw-video", params={"format": "mp4"},
                               files={"file": ("clip.mp4", video, "video/mp4"), "result": ("r.json", text)})
        return response.status_code, response.json()["error"]["message"]

    face = answer["frames"][0]["faces"][0]
    assert refused(b"{not json")[1].startswith("result: Invalid JSON: ")
    assert refused({"frames": []}) == (422, "result: every: Field required: send the JSON /v1/analyze-video "
                                            "answered for this video")
    assert refused(answer | {"frames": [{"frame": 0, "faces": [face | {"track": None}]}]})[1].startswith(
        "result: frames.0.faces.0.track: Input should be a valid integer")
    assert refused(answer | {"every": 2}) == (422, "clip.mp4: frame 1 is not a multiple of every=2: give the every the "
                                                   "faces were found with")
    later = answer | {"frames": [{"frame": 9, "faces": [face]}]}
    assert refused(later) == (422, "clip.mp4: the faces given go up to frame 9, the video ends at frame 5: they were "
                                   "found in another video")
    bad_label = answer | {"frames": [{"frame": 0, "faces": [face | {"label": "Bored"}]}]}
    assert refused(bad_label)[1].startswith("result: frames.0.faces.0.label: Input should be 'Angry'")
    partial = answer | {"frames": [{"frame": 0, "faces": [face | {"probabilities": {"Happy": 1.0}}]}]}
    assert "give all seven" in refused(partial)[1]
    assert refused(answer, video=astronaut.read_bytes())[0] == 415
    missing = client.post("/v1/draw-video", files={"file": ("clip.mp4", clip, "video/mp4")})
    assert missing.status_code == 422 and missing.json()["error"]["message"].startswith("body.result: Field required")
    monkeypatch.setattr(serve, "MAX_DRAWING_BYTES", 100)
    assert refused(answer) == (413, "result over the 100-byte limit")


def test_without_pyav_h264_is_refused_before_the_analysis(client, astronaut, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # as if PyAV were not installed
    assert "h264" not in client.get("/v1/health").json()["annotated_video"]
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 3)
    refused = client.post("/v1/analyze-video", params={"format": "h264"}, files={"file": ("c.mp4", clip, "video/mp4")})
    assert refused.status_code == 422 and 'pip install "ferlab[h264]"' in refused.json()["error"]["message"]


def test_video_uploads_are_checked(client, astronaut, tmp_path, monkeypatch):
    from ferlab import serve

    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)

    def refused(content: bytes, name: str = "clip.mp4", params=None) -> tuple[int, str]:
        response = client.post("/v1/analyze-video", params=params, files={"file": (name, content, "video/mp4")})
        return response.status_code, response.json()["error"]["message"]

    assert refused(b"") == (400, "clip.mp4: empty file")
    assert refused(astronaut.read_bytes())[0] == 415  # a photo is not a video
    assert refused(clip[:200]) == (422, "clip.mp4: not a video OpenCV can open (corrupt, truncated or unsupported codec)")
    monkeypatch.setattr(serve, "MAX_VIDEO_FRAMES", 4)
    assert refused(clip, params={"every": 1}) == (
        422, "clip.mp4: 6 frames at every=1 is over the 4-frame limit; ask for every=2 or more")
    assert [f["frame"] for f in client.post("/v1/analyze-video", files={"file": ("c", clip, "video/mp4")}).json()[
        "frames"]] == [0, 2, 4]  # every 2nd by default: the least that keeps under the limit
    monkeypatch.setattr(serve, "MAX_VIDEO_BYTES", len(clip) - 1)
    assert refused(clip)[0] == 413


def test_a_video_analysis_can_report_its_progress(tiny_model, astronaut, tmp_path):
    analyzer = Analyzer(load_model(tiny_model))
    classify = analyzer.model.predict_proba
    analyzer.model.predict_proba = lambda crops: (time.sleep(0.3), classify(crops))[1]  # 0.3 s a frame
    client = TestClient(create_app(analyzer))
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    plain = client.post("/v1/analyze-video", files={"file": ("clip.mp4", clip, "video/mp4")}).json()
    response = client.post("/v1/analyze-video", params={"progress": "true"},
                           files={"file": ("clip.mp4", clip, "video/mp4")})
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-encoding"] == "gzip"  # compressed, and still line by line (below)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1] == {"result": plain}
    counts = [line["analyzed"] for line in lines[:-1]]
    assert len(counts) >= 2 and counts == sorted(counts) and counts[-1] <= 6
    assert all(line.keys() == {"analyzed", "of"} and line["of"] == 6 for line in lines[:-1])
    broken = client.post("/v1/analyze-video", params={"progress": "true"},
                         files={"file": ("clip.mp4", clip[:200], "video/mp4")})
    assert [json.loads(line) for line in broken.text.splitlines()][-1] == {"error": {
        "status": 422, "message": "clip.mp4: not a video OpenCV can open (corrupt, truncated or unsupported codec)"}}


@pytest.mark.parametrize("params", [{"progress": "true"}, {"format": "webm"}, {}])
def test_an_analysis_longer_than_the_upload_deadline_is_answered_whole(tiny_model, astronaut, tmp_path, params):
    """The deadline is for receiving the body; a streamed or file answer that listens for the
    client going away after it must not be cut off by it."""
    analyzer = Analyzer(load_model(tiny_model))
    classify = analyzer.model.predict_proba
    analyzer.model.predict_proba = lambda crops: (time.sleep(0.4), classify(crops))[1]  # 6 frames: 2.4 s
    client = TestClient(create_app(analyzer, body_seconds=1.0))
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)
    response = client.post("/v1/analyze-video", params=params, files={"file": ("clip.mp4", clip, "video/mp4")})
    assert response.status_code == 200
    if "progress" in params:
        assert "result" in json.loads(response.text.splitlines()[-1])
    elif "format" in params:
        assert response.content[:4] == b"\x1a\x45\xdf\xa3"  # a whole WebM file


def test_videos_take_turns_and_are_refused_when_too_many_wait(tiny_model, astronaut, tmp_path):
    analyzer = Analyzer(load_model(tiny_model))
    classify, started = analyzer.model.predict_proba, threading.Event()
    analyzer.model.predict_proba = lambda crops: (started.set(), time.sleep(0.3), classify(crops))[2]  # 1.8 s a clip
    client = TestClient(create_app(analyzer, max_waiting_videos=1))
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 6)

    def post(params=None):
        return client.post("/v1/analyze-video", params=params, files={"file": ("clip.mp4", clip, "video/mp4")})

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(post)
        assert started.wait(10)  # the first is under way
        second = pool.submit(post, {"progress": "true"})
        time.sleep(0.5)  # the second waits its turn
        third = post()  # one more would be the second waiting
        lines = [json.loads(line) for line in second.result().text.splitlines()]
        assert first.result().status_code == 200
    assert third.status_code == 503 and "try again later" in third.json()["error"]["message"]
    assert {"queued": 1, "analyzed": 0, "of": 0} in lines  # it said it was waiting, one video ahead
    waited = [i for i, line in enumerate(lines) if "queued" in line]
    assert waited == list(range(len(waited))) and lines[-1]["result"]["frames"]  # then it was analysed
    assert post().status_code == 200  # the line is empty again


def test_a_video_whose_client_goes_away_while_it_waits_leaves_the_line():
    import asyncio

    from ferlab.serve import VideoLine
    from ferlab.video import VideoError

    async def scenario() -> list:
        line, gone, seen = VideoLine(slots=1, max_waiting=8), threading.Event(), []
        release = asyncio.Event()

        async def first():
            async with line.turn():
                await release.wait()

        async def second():
            async with line.turn(seen.append, gone):
                raise AssertionError("its turn should never come")

        running = asyncio.ensure_future(first())
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(second())
        await asyncio.sleep(0.1)
        assert len(line.line) == 2 and seen == [1]  # one analysis ahead of it
        gone.set()  # the page was closed
        with pytest.raises(VideoError, match="abandoned by its client while waiting"):
            await asyncio.wait_for(waiting, 2)
        assert len(line.line) == 1  # the first's alone
        release.set()
        await running
        return line.line

    assert asyncio.run(scenario()) == []


def test_a_long_video_can_be_shared_among_worker_processes(tiny_model, astronaut, tmp_path, monkeypatch):
    from functools import partial

    from ferlab import video_segments
    from ferlab.predict import build_analyzer

    monkeypatch.setattr(video_segments, "SEGMENT_FRAMES", 40)  # 120 frames: three segments
    monkeypatch.setattr(video_segments, "MIN_SEGMENT_FRAMES", 30)
    from ferlab import serve

    planned = []
    monkeypatch.setattr(serve, "plan_segments", lambda *args: planned.append(video_segments.plan_segments(*args))
                        or planned[-1])
    clip = write_clip(tmp_path / "clip.mp4", astronaut, 120)
    one = TestClient(create_app(Analyzer(load_model(tiny_model))))
    shared = TestClient(create_app(Analyzer(load_model(tiny_model)), video_workers=2,
                                   build=partial(build_analyzer, str(tiny_model))))
    expected = one.post("/v1/analyze-video", files={"file": ("clip.mp4", clip, "video/mp4")}).json()
    lines = shared.post("/v1/analyze-video", params={"progress": "true"},
                        files={"file": ("clip.mp4", clip, "video/mp4")}).text.splitlines()
    body = json.loads(lines[-1])["result"]
    assert len(body["frames"]) == 120 and (body["width"], body["height"]) == (512, 512)
    assert body == expected
    assert [len(segments) for segments in planned] == [0, 4]  # one process, then four segments for two workers
    counts = [json.loads(line)["analyzed"] for line in lines[:-1]]  # the workers' count, as they go
    assert counts == sorted(counts) and all(0 <= n <= 120 for n in counts)
    import cv2

    copy = shared.post("/v1/analyze-video", params={"format": "mp4"}, files={"file": ("clip.mp4", clip, "video/mp4")})
    (tmp_path / "annotated.mp4").write_bytes(copy.content)
    assert int(cv2.VideoCapture(str(tmp_path / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 120
    assert len(planned[-1]) == 4  # drawn from the workers' segments too


def test_a_video_analysis_stops_once_its_client_has_gone(tiny_model, astronaut, tmp_path):
    from contextlib import nullcontext

    from ferlab.serve import video_timeline
    from ferlab.video import VideoError

    analyzer = Analyzer(load_model(tiny_model))
    classify, classified, gone = analyzer.model.predict_proba, [], threading.Event()

    def leaving_after_two_frames(crops):
        classified.append(len(crops))
        if len(classified) == 2:
            gone.set()  # as the progress stream's end does when the page is closed
        return classify(crops)

    analyzer.model.predict_proba = leaving_after_two_frames
    write_clip(tmp_path / "clip.mp4", astronaut, 6)
    counter = {"analyzed": 0, "of": 0}
    with pytest.raises(VideoError, match="clip.mp4: abandoned by its client"):
        video_timeline(analyzer, tmp_path / "clip.mp4", "clip.mp4", None, 0.05, nullcontext(), counter, abandoned=gone)
    assert len(classified) == 2 and counter == {"analyzed": 1, "of": 6}  # stopped at the count after the second
