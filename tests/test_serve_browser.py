"""End to end in a real headless Chromium: load the page, upload a face photo or show it a
webcam, read what it drew."""

import contextlib
import csv
import importlib.util
import json
import re
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS
from ferlab.predict import Analyzer
from ferlab.serve import create_app
from ferlab.video import TIMELINE_HEADER

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")


@contextlib.contextmanager
def running(app):
    """Serve ``app`` with uvicorn on a free loopback port; yields the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(10)


@pytest.fixture
def server(tiny_model):
    with running(create_app(Analyzer(load_model(tiny_model)))) as port:
        yield f"http://127.0.0.1:{port}"


def test_upload_draws_boxes_labels_and_bars(server, astronaut, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone-sized screen
        page.goto(server)
        page.set_input_files("#file", str(astronaut))
        page.wait_for_selector(".face", timeout=20_000)
        assert "1 face found" in page.inner_text("#status")
        label = page.get_attribute(".face", "data-label")
        assert label in EMOTIONS
        assert page.inner_text(".face h2") == f"Face 1: {label}"
        assert page.locator(".face .bar").count() == 7
        # The middle of the box's left edge is painted in the label's colour.
        pixel = page.evaluate("""() => {
            const [x, y, w, h] = window.lastResult.faces[0].box;
            const c = document.getElementById('photo');
            return Array.from(c.getContext('2d').getImageData(x, y + Math.round(h / 2), 1, 1).data);
        }""")
        colour = page.evaluate(f"() => COLOURS['{label}']")
        assert pixel[:3] == [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        width = page.evaluate("() => document.getElementById('photo').getBoundingClientRect().width")
        assert width <= 390  # fits the phone-sized viewport
        assert page.locator(".face figure.why").count() == 0
        page.check("#explain")  # the same photo again, explained
        page.set_input_files("#file", [])
        page.set_input_files("#file", str(astronaut))
        page.wait_for_selector(".face figure.why img", timeout=20_000)
        assert page.evaluate("() => document.querySelector('.face figure.why img').naturalWidth") == 144
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        browser.close()
    assert (tmp_path / "serve.png").stat().st_size > 10_000


def write_y4m(path, rgb, frames=5):
    """``frames`` copies of ``rgb`` as a Y4M video, the format Chromium's fake webcam plays."""
    import cv2

    height, width = rgb.shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def test_a_photo_the_browser_cannot_show_still_gets_its_faces(server, astronaut, tmp_path):
    from playwright.sync_api import sync_playwright

    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from PIL import Image

    heic = tmp_path / "IMG_0001.HEIC"
    Image.open(astronaut).save(heic, "HEIF", quality=90)  # Chromium does not decode HEIC
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(server)
        page.set_input_files("#file", str(heic))
        page.wait_for_selector(".face", timeout=20_000)
        assert "1 face found in IMG_0001.HEIC" in page.inner_text("#status")
        assert "drawn on grey" in page.inner_text("#status")
        assert page.evaluate("() => [$('photo').width, $('photo').height]") == [512, 512]  # grey, the photo's size
        browser.close()


def test_several_photos_are_shown_in_turn_and_kept_as_thumbnails(server, astronaut, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), "white").save(blank)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(server)
        page.set_input_files("#file", [str(astronaut), str(blank)])
        page.wait_for_function("() => document.querySelectorAll('#gallery .shot').length === 2", timeout=20_000)
        assert "2 photos, 1 face: click one below" in page.inner_text("#status")
        shots = page.locator("#gallery .shot")
        assert shots.nth(0).inner_text().startswith("astronaut.jpg: ") and shots.nth(1).inner_text() == "blank.png: no face"
        assert page.locator(".face").count() == 0  # the last one shown: the blank
        shots.nth(0).click()
        page.wait_for_selector(".face", timeout=10_000)
        assert "1 face found in astronaut.jpg" in page.inner_text("#status")
        assert page.evaluate("() => document.getElementById('photo').width") == 512
        # a group photo: how many faces have each label
        portrait = Image.open(astronaut)
        pair = Image.new("RGB", (1024, 512))
        pair.paste(portrait, (0, 0))
        pair.paste(portrait, (512, 0))
        pair.save(tmp_path / "pair.jpg")
        page.set_input_files("#file", str(tmp_path / "pair.jpg"))
        page.wait_for_function("() => document.querySelectorAll('.face').length === 2", timeout=20_000)
        assert re.search(r"2 faces found in pair\.jpg: (2 \w+|1 \w+, 1 \w+)\.", page.inner_text("#status"))
        browser.close()


def test_a_video_is_played_with_its_tracked_faces_and_a_strip_per_track(server, astronaut, tmp_path):
    import cv2
    from playwright.sync_api import sync_playwright

    face = cv2.imread(str(astronaut))
    clips = {"clip.webm": "VP80", "clip.mp4": "mp4v"}  # Chromium plays VP8, not MPEG-4 Part 2
    for name, codec in clips.items():
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*codec), 10, face.shape[1::-1])
        for i in range(8):
            writer.write(face if i < 6 else face * 0 + 127)  # the face, then 0.2 s without it
        writer.release()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(server)
        page.set_input_files("#file", str(tmp_path / "clip.webm"))
        page.wait_for_selector("#timeline .strip", timeout=30_000)
        assert "clip.webm: 1 face tracked over 8 frames." in page.inner_text("#status")
        assert page.evaluate("() => window.lastVideo.tracks.length") == 1
        assert page.inner_text(".face h2").startswith("Face #0: ")  # the first frame, its face by its track
        assert page.is_visible("#player") and page.is_enabled("#play")
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        page.wait_for_function("() => document.querySelectorAll('.face').length === 0", timeout=5_000)  # no face at the end
        assert float(page.input_value("#seek")) >= 0.7

        page.set_input_files("#file", str(tmp_path / "clip.mp4"))
        page.wait_for_function("() => document.getElementById('status').textContent.includes('drawn on grey')",
                               timeout=30_000)
        assert "clip.mp4: 1 face tracked over 8 frames. This browser cannot play the video" in page.inner_text("#status")
        assert page.locator(".face").count() == 1 and page.is_disabled("#play")
        page.eval_on_selector("#seek", "s => { s.value = 0.7; s.oninput(); }")  # the slider moves through it
        assert page.locator(".face").count() == 0 and page.inner_text("#clock") == "0.7 s, frame 7"
        page.click("#play-copy")  # the server draws the faces into a copy this browser plays
        page.wait_for_function("() => document.getElementById('status').textContent.includes('played from a copy')",
                               timeout=30_000)
        assert page.is_enabled("#play") and not page.is_visible("#play-copy")
        assert page.locator(".face").count() == 1 and page.is_visible("#save-video")  # cards beside it, as before
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        with page.expect_download() as download:  # the copy is kept: saved at once
            page.click("#save-video")
        assert download.value.suggested_filename.startswith("clip.annotated.")

        (tmp_path / "notes.mp4").write_text("not a video at all")  # refused before the analysis
        page.set_input_files("#file", str(tmp_path / "notes.mp4"))
        page.wait_for_selector("#status.error", timeout=10_000)
        assert page.inner_text("#status") == "notes.mp4: not an MP4, MOV, WebM, MKV or AVI video"
        (tmp_path / "cut.mp4").write_bytes((tmp_path / "clip.mp4").read_bytes()[:300])  # fails in the analysis
        page.set_input_files("#file", str(tmp_path / "cut.mp4"))
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('cut.mp4: not a video')",
                               timeout=10_000)
        assert page.get_attribute("#status", "class") == "error"
        browser.close()


def test_what_is_shown_can_be_saved_as_the_servers_csv_json_and_a_picture(server, astronaut, tmp_path):
    import cv2
    import httpx2
    from PIL import Image
    from playwright.sync_api import sync_playwright

    clip = tmp_path / "clip.webm"
    face = cv2.imread(str(astronaut))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"VP80"), 10, face.shape[1::-1])
    for i in range(5):
        writer.write(face if i < 4 else face * 0 + 127)
    writer.release()
    second = tmp_path / "second.png"
    Image.open(astronaut).convert("L").save(second)

    def server_csv(path, endpoint: str = "analyze") -> str:  # what the API answers with ?format=csv
        with open(path, "rb") as handle:
            response = httpx2.post(f"{server}/v1/{endpoint}", params={"format": "csv"}, timeout=60,
                                  files={"file": (path.name, handle)})
        return response.text

    def saved(page, button: str):  # the file the page saves when ``button`` is clicked
        with page.expect_download() as download:
            page.click(button)
        return download.value.suggested_filename, download.value.path()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(server)
        assert not page.is_visible("#save")
        page.set_input_files("#file", str(astronaut))
        page.wait_for_selector(".face", timeout=20_000)
        name, path = saved(page, "#save-csv")
        assert name == "astronaut.csv" and path.read_bytes().decode() == server_csv(astronaut)
        name, path = saved(page, "#save-json")
        assert name == "astronaut.json"
        assert json.loads(path.read_text()) == page.evaluate("() => window.lastResult")
        name, path = saved(page, "#save-picture")
        assert name == "astronaut.annotated.png" and Image.open(path).size == (512, 512)
        assert not page.is_visible("#save-all") and not page.is_visible("#save-video")  # for videos
        assert not page.is_visible("#player")  # a video's controls, not under a photo

        page.set_input_files("#file", [str(astronaut), str(second)])
        page.wait_for_function("() => document.querySelectorAll('#gallery .shot').length === 2", timeout=20_000)
        name, path = saved(page, "#save-all")
        both = server_csv(astronaut) + server_csv(second).split("\r\n", 1)[1]  # one header
        assert name == "ferlab-photos.csv" and path.read_bytes().decode() == both

        page.set_input_files("#file", str(clip))
        page.wait_for_selector("#timeline .strip", timeout=30_000)
        name, path = saved(page, "#save-csv")
        assert name == "clip.timeline.csv" and path.read_bytes().decode() == server_csv(clip, "analyze-video")
        assert len(path.read_text().splitlines()) == 1 + 4
        name, path = saved(page, "#save-picture")
        assert name == "clip.frame-0.0s.png" and Image.open(path).size == (512, 512)
        name, path = saved(page, "#save-video")  # drawn by the server: H.264 where it has PyAV, else VP8
        expected = "clip.annotated.mp4" if importlib.util.find_spec("av") else "clip.annotated.webm"
        assert name == expected and f"Saved {expected}." in page.inner_text("#status")
        copy = cv2.VideoCapture(str(path))
        assert int(copy.get(cv2.CAP_PROP_FRAME_WIDTH)) == 512 and sum(iter(lambda: copy.read()[0], False)) == 5

        name, path = saved(page, "#save-player")  # this page with the answer, to keep beside the video
        assert name == "clip.html" and "put it beside clip.webm" in page.inner_text("#status")
        (tmp_path / "clip.html").write_bytes(path.read_bytes())
        page.goto((tmp_path / "clip.html").as_uri())  # offline, no server
        page.wait_for_selector("#timeline .strip", timeout=20_000)
        assert page.inner_text("#status") == "clip.webm: 1 face tracked over 5 frames."
        assert not page.is_visible("#save-player") and page.evaluate("() => document.getElementById('clip').readyState") >= 2
        browser.close()


def test_live_webcam_analyzes_frame_after_frame_until_stopped(server, astronaut, tmp_path):
    from playwright.sync_api import sync_playwright

    from ferlab.imageio import load_image

    camera = tmp_path / "camera.y4m"
    write_y4m(camera, load_image(astronaut))
    fake_webcam = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-video-capture={camera}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS + fake_webcam)
        page = browser.new_page()
        page.goto(server)
        assert not page.is_visible("#record-option") and not page.is_visible("#live")  # no webcam yet
        page.click("#camera")
        page.wait_for_selector("#record-option", state="visible", timeout=10_000)  # once the webcam is on
        assert page.is_visible("#live")
        page.click("#live")
        page.wait_for_function("() => window.liveFrames >= 3", timeout=30_000)
        assert re.fullmatch(r"Live: 1 face found, [\d.]+ frames/s\.", page.inner_text("#status"))
        assert page.inner_text("#live") == "Stop live" and page.locator(".face").count() == 1
        # Live frames are one stream's, so the face keeps its track and is named by it.
        assert page.evaluate("() => window.lastResult.stream").startswith("live-")
        assert page.evaluate("() => window.lastResult.faces[0].track") == 0
        assert re.fullmatch(r"Face #0: \w+", page.inner_text(".face h2"))
        page.click("#live")
        assert page.inner_text("#live") == "Start live"
        time.sleep(0.5)  # the frame that was out when it stopped comes back but is not counted
        frames = page.evaluate("() => window.liveFrames")
        time.sleep(1.0)
        assert page.evaluate("() => window.liveFrames") == frames
        # its faces can be saved as ferlab video's timeline, timed from the session's start
        assert re.fullmatch(rf"Live stopped: {frames} frames over [\d.]+ s; save their faces as a timeline "
                            r"\(CSV, as ferlab video writes\) or as JSON\.", page.inner_text("#status"))
        assert page.is_visible("#save-csv") and not page.is_visible("#save-video") and not page.is_visible("#player")
        with page.expect_download() as download:
            page.click("#save-csv")
        assert re.fullmatch(r"webcam-[\d-]+T[\d-]+\.timeline\.csv", download.value.suggested_filename)
        with open(download.value.path(), newline="") as handle:
            rows = list(csv.DictReader(handle))
        numbers = [int(r["frame"]) for r in rows]  # a row per face: none for a frame without (a camera starting dark)
        assert list(rows[0]) == TIMELINE_HEADER and len(rows) >= frames // 2 and set(numbers) <= set(range(frames))
        times = [float(r["time_s"]) for r in rows]
        assert numbers == sorted(set(numbers)) and times == sorted(times) and {r["track"] for r in rows} == {"0"}

        # recorded (asked for), the session is played back with its faces and strips once stopped
        page.check("#record")
        page.click("#live")
        page.wait_for_function("() => window.liveFrames >= 5", timeout=30_000)
        page.click("#live")
        page.wait_for_selector("#timeline .strip", timeout=20_000)
        assert re.fullmatch(r"Live stopped: \d+ frames over [\d.]+ s, played back from its recording with its "
                            r"faces; save it with its faces drawn \(the server draws them\), the recording, its "
                            r"player page \(beside it\), its timeline \(CSV, as ferlab video writes\) or JSON\.",
                            page.inner_text("#status"))
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=20_000)
        assert page.locator(".face").count() == 1  # the last frame's face, over the recording's last picture
        assert page.is_visible("#save-recording") and page.is_visible("#save-player")
        with page.expect_download() as download:
            page.click("#save-recording")
        recording = download.value.suggested_filename
        download.value.save_as(tmp_path / recording)
        assert re.fullmatch(r"webcam-[\d-]+T[\d-]+\.webm", recording) and download.value.path().stat().st_size > 1000
        with page.expect_download(timeout=60_000) as download:  # the server draws its faces into it, by time
            page.click("#save-video")
        assert download.value.suggested_filename in (recording.replace(".webm", ".annotated.mp4"),  # H.264
                                                     recording.replace(".webm", ".annotated.webm"))  # without PyAV
        import cv2

        def frames_of(path) -> list:
            capture, frames = cv2.VideoCapture(str(path)), []
            while (frame := capture.read()[1]) is not None:
                frames.append(frame.astype(int))
            return frames

        pairs = zip(frames_of(download.value.path()), frames_of(tmp_path / recording), strict=False)
        assert any(abs(drawn - plain).mean() > 0.8 for drawn, plain in pairs)  # its face boxed and labelled
        with page.expect_download() as download:
            page.click("#save-csv")
        assert download.value.suggested_filename == recording.replace(".webm", ".timeline.csv")
        browser.close()


def test_a_steady_upload_slower_than_the_first_deadline_is_taken(tiny_model, astronaut):
    """A big video on a slow line: its body takes longer than ``body_seconds`` but keeps coming."""
    photo = astronaut.read_bytes()
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--b--\r\n")
    app = create_app(Analyzer(load_model(tiny_model)), body_seconds=1.0, body_min_rate=2_000)
    with running(app) as port:
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                       b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        started, step = time.time(), len(body) // 10 + 1
        for offset in range(0, len(body), step):  # ten pieces over about 2 s: about 10 kB/s
            client.sendall(body[offset : offset + step])
            time.sleep(0.2)
        assert time.time() - started > 1.5  # longer than the first second
        client.settimeout(20)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        client.close()
    assert answer.startswith(b"HTTP/1.1 200") and b'"faces"' in answer


def test_a_slow_client_is_cut_off_without_blocking_others(tiny_model, astronaut):
    import httpx2

    app = create_app(Analyzer(load_model(tiny_model)), body_seconds=3.0)
    with running(app) as port:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        start = time.time()
        fast = httpx2.post(f"http://127.0.0.1:{port}/v1/analyze",
                          files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")}, timeout=30)
        assert fast.status_code == 200 and time.time() - start < 3.0  # served while the slow one waits
        slow.settimeout(10)
        answer = b""
        while b'"error"' not in answer and (chunk := slow.recv(4096)):  # headers and body may come apart
            answer += chunk
        answer = answer.decode()
        assert time.time() - start < 8
        assert answer.startswith("HTTP/1.1 408") and "error" in answer
        slow.close()
