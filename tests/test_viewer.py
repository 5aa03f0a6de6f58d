"""`ferlab video --html`: the page as an offline viewer of one video's analysis."""

import json
import re
import shutil
from pathlib import Path

import cv2
import pytest

from ferlab.classifier import load_model
from ferlab.predict import Analyzer
from ferlab.video import analyze_video
from ferlab.viewer import write_viewer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def write_clip(path, astronaut, codec: str) -> None:
    face = cv2.imread(str(astronaut))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, face.shape[1::-1])
    for i in range(8):
        writer.write(face if i < 6 else face * 0 + 127)  # the face, then 0.2 s without it
    writer.release()


def view_of(page_path) -> dict:
    found = re.search(r'<script id="ferlab-view" type="application/json">(.*?)</script>', page_path.read_text(), re.S)
    return json.loads(found.group(1))


def test_the_viewer_holds_the_analysis_and_a_link_to_the_video(astronaut, tiny_model, tmp_path):
    (tmp_path / "my videos").mkdir()
    video = tmp_path / "my videos" / "clip #1.webm"
    write_clip(video, astronaut, "VP80")
    result = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", every=2, progress=False,
                           html=True)
    view = view_of(tmp_path / "out" / "clip #1.html")
    assert result["html"] == str(tmp_path / "out" / "clip #1.html")
    assert view["name"] == "clip #1.webm" and view["copy"] is None
    assert view["video"] == "../my%20videos/clip%20%231.webm"  # relative, so that both can move together
    answer = view["answer"]
    assert [f["frame"] for f in answer["frames"]] == [0, 2, 4, 6] and answer["every"] == 2
    assert (answer["width"], answer["height"], answer["frames_read"]) == (512, 512, 8)
    assert [len(f["faces"]) for f in answer["frames"]] == [1, 1, 1, 0]
    assert answer["tracks"] == result["tracks"]


def test_no_text_in_the_data_can_end_its_script_element(tmp_path):
    answer = {"frames": [], "tracks": [], "note": "</script><script>alert(1)</script><!--"}
    page = write_viewer(tmp_path / "v.html", answer, "a</script>.mp4", None)
    assert view_of(page)["answer"]["note"] == answer["note"] and view_of(page)["name"] == "a</script>.mp4"
    assert page.read_text().count("</script>") == 2  # the data's and the page's own


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_viewer_plays_the_video_offline_or_its_annotated_copy(astronaut, tiny_model, tmp_path):
    pytest.importorskip("av")
    from playwright.sync_api import sync_playwright

    analyzer = Analyzer(load_model(tiny_model))
    write_clip(tmp_path / "clip.webm", astronaut, "VP80")  # Chromium plays VP8, not MPEG-4 Part 2
    write_clip(tmp_path / "old.mp4", astronaut, "mp4v")
    analyze_video(tmp_path / "clip.webm", analyzer, tmp_path / "out", progress=False, html=True)
    analyze_video(tmp_path / "old.mp4", analyzer, tmp_path / "out", progress=False, html=True, annotate="h264")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((tmp_path / "out" / "clip.html").as_uri())
        page.wait_for_selector("#timeline .strip", timeout=20_000)
        assert page.title() == "ferlab: clip.webm"
        assert page.inner_text("#status") == "clip.webm: 1 face tracked over 8 frames."
        assert not page.is_visible("#drop") and not page.is_visible("#save-video")  # nothing that needs a server
        assert page.inner_text(".face h2").startswith("Face #0: ")
        assert re.fullmatch(r"Face #0, 0-0.5 s, in 6 analysed frames: \w+ 100%", page.get_attribute(".strip", "title"))
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        page.wait_for_function("() => document.querySelectorAll('.face').length === 0", timeout=5_000)
        page.keyboard.press("ArrowLeft")  # reviewing: from analysed frame to frame
        page.wait_for_function("() => document.getElementById('clock').textContent === '0.6 s, frame 6'", timeout=5_000)
        for _ in range(7):
            page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.getElementById('clock').textContent === '0.0 s, frame 0'", timeout=5_000)
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.getElementById('clock').textContent === '0.1 s, frame 1'", timeout=5_000)
        assert page.locator(".face").count() == 1
        page.keyboard.press(" ")  # plays from there
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        with page.expect_download() as download:
            page.click("#save-csv")
        assert download.value.suggested_filename == "clip.timeline.csv"
        assert download.value.path().read_text().splitlines() == (tmp_path / "out" / "clip.timeline.csv").read_text(
        ).splitlines()  # the page writes the timeline ferlab video wrote

        page.goto((tmp_path / "out" / "old.html").as_uri())
        page.wait_for_function("() => document.getElementById('status').textContent.includes('drawn on grey')",
                               timeout=20_000)
        assert "or play its annotated copy" in page.inner_text("#status") and page.is_visible("#play-copy")
        page.click("#play-copy")  # the H.264 copy beside the page, no server
        page.wait_for_function("() => document.getElementById('status').textContent.includes('played from a copy')",
                               timeout=20_000)
        assert page.evaluate("() => document.getElementById('clip').src").endswith("/out/old.annotated.mp4")
        assert page.is_enabled("#play") and page.locator(".face").count() == 1
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        browser.close()
    assert errors == []


def write_photos(folder, astronaut) -> None:
    from PIL import Image

    (folder / "sub").mkdir(parents=True)
    shutil.copy(astronaut, folder / "astronaut.jpg")
    shutil.copy(astronaut, folder / "sub" / "a <b> & c.jpg")  # a name to escape
    Image.new("RGB", (300, 200), (128, 128, 128)).save(folder / "grey.png")
    (folder / "notes.jpg").write_text("not a photo")


def photos_of(page_path) -> list[dict]:
    found = re.search(r'<script id="ferlab-photos" type="application/json">(.*?)</script>', page_path.read_text(), re.S)
    return json.loads(found.group(1))


def test_predict_html_writes_a_gallery_of_the_results_file(astronaut, tmp_path, capsys):
    from ferlab.cli import main

    write_photos(tmp_path / "photos", astronaut)
    gallery = tmp_path / "report" / "photos.html"
    first = ["predict", str(tmp_path / "photos" / "sub"), "--out", str(tmp_path / "faces.jsonl"), "--quiet"]
    assert main(first) == 0
    assert main(["predict", str(tmp_path / "photos"), "--out", str(tmp_path / "faces.jsonl"), "--resume", "--quiet",
                 "--html", str(gallery)]) == 1  # notes.jpg is not a photo
    assert f"the photos with their faces, to open in a web browser: {gallery}" in capsys.readouterr().err
    photos = {photo["name"]: photo for photo in photos_of(gallery)}  # this run's and the earlier one's
    assert sorted(photos) == ["a <b> & c.jpg", "astronaut.jpg", "grey.png", "notes.jpg"]
    assert photos["a <b> & c.jpg"]["url"] == "../photos/sub/a%20%3Cb%3E%20%26%20c.jpg"
    assert [face["label"] for face in photos["astronaut.jpg"]["faces"]] == ["Happy"]
    assert photos["grey.png"]["faces"] == [] and "not an image file" in photos["notes.jpg"]["error"]

    assert main(["predict", str(tmp_path / "photos"), "--out", str(tmp_path / "faces.csv"), "--quiet", "--html",
                 str(tmp_path / "from-csv.html")]) == 1
    assert sorted(photo["name"] for photo in photos_of(tmp_path / "from-csv.html")) == ["a <b> & c.jpg", "astronaut.jpg"]

    capsys.readouterr()
    assert main(["predict", str(tmp_path / "photos" / "grey.png"), "--html", str(tmp_path / "stdout.html")]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == []  # printed as before, and in the page
    assert [photo["name"] for photo in photos_of(tmp_path / "stdout.html")] == ["grey.png"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_gallery_shows_the_photos_with_their_faces_filtered_by_label(astronaut, tmp_path):
    from playwright.sync_api import sync_playwright

    from ferlab.predict import predict_files
    from ferlab.viewer import write_gallery

    write_photos(tmp_path / "photos", astronaut)
    results = list(predict_files([str(tmp_path / "photos")], None, progress=False))
    confidence = next(result["faces"][0]["confidence"] for result in results if result.get("faces"))
    gallery = write_gallery(tmp_path / "photos.html", results)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(gallery.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.box').length === 2", timeout=10_000)
        assert page.title() == "ferlab: photos" and page.inner_text("h1") == "ferlab: 4 photos"
        assert page.locator("#filters button").all_inner_texts() == ["All (4)", "Happy (2)", "No face (1)", "Failed (1)"]
        assert page.locator(".box span").all_inner_texts() == [f"1. Happy {int(100 * confidence + 0.5)}%"] * 2
        box = page.locator(".box").first.bounding_box()
        picture = page.locator(".picture img").first.bounding_box()
        assert 0.15 < (box["x"] - picture["x"]) / picture["width"] < 0.45  # the face, where it is in the photo
        page.click("button[data-filter='No face']")
        assert page.locator(".photo").all_inner_texts() == ["grey.png: no face"]
        page.click("button[data-filter='Happy']")
        assert page.locator(".photo").count() == 2
        page.locator(".photo").first.click()
        assert page.is_visible("#large") and page.locator("#large .bar").count() == 7
        page.keyboard.press("Escape")
        assert not page.is_visible("#large")

        # labelled photos (ferlab photo-accuracy --html): the wrong ones a click away
        results = [{"path": str(tmp_path / "photos" / "astronaut.jpg"), "faces": photos_of(gallery)[0]["faces"]},
                   {"path": str(tmp_path / "photos" / "grey.png"), "faces": []}]
        labelled = write_gallery(tmp_path / "labelled.html", results, {results[0]["path"]: "Sad",
                                                                     results[1]["path"]: "Neutral"})
        page.goto(labelled.as_uri())
        page.wait_for_selector(".box", timeout=10_000)
        assert page.locator("#filters button").all_inner_texts() == ["All (2)", "Wrong (2)", "Happy (1)", "No face (1)"]
        assert page.locator(".photo .error").all_inner_texts() == ["expected Sad", "expected Neutral"]
        browser.close()
    assert errors == []


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_gallery_shows_heic_and_tiff_photos_by_jpeg_previews(astronaut, tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from ferlab.predict import predict_files
    from ferlab.viewer import write_gallery

    pillow_heif.register_heif_opener()
    big = Image.open(astronaut).resize((2048, 2048))  # over the preview's 1,600 pixels
    for folder in ("a", "b"):  # one name in two folders: two previews
        (tmp_path / "photos" / folder).mkdir(parents=True)
        big.save(tmp_path / "photos" / folder / "IMG_0001.heic")
    Image.open(astronaut).save(tmp_path / "photos" / "scan.tif")
    results = list(predict_files([str(tmp_path / "photos")], None, progress=False))
    gallery = write_gallery(tmp_path / "photos.html", results)
    photos = {photo["url"]: photo for photo in photos_of(gallery)}
    assert sorted(photos) == ["photos.previews/a/IMG_0001.jpg", "photos.previews/b/IMG_0001.jpg",
                              "photos.previews/scan.jpg"]
    assert photos["photos.previews/a/IMG_0001.jpg"]["size"] == [2048, 2048]  # the boxes' pixels
    assert Image.open(tmp_path / "photos.previews" / "a" / "IMG_0001.jpg").size == (1600, 1600)
    assert Image.open(tmp_path / "photos.previews" / "scan.jpg").size == (512, 512)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(gallery.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.box').length === 3", timeout=10_000)
        for box, img in zip(page.locator(".box").all(), page.locator(".picture img").all(), strict=True):
            box, img = box.bounding_box(), img.bounding_box()
            assert 0.15 < (box["x"] - img["x"]) / img["width"] < 0.45  # where the face is, as in the JPEG
            assert 0.1 < box["width"] / img["width"] < 0.4
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_player_plays_the_videos_sound_unless_turned_off(astronaut, tiny_model, tmp_path):
    from playwright.sync_api import sync_playwright

    from ferlab.imageio import load_image

    from .conftest import write_video_with_sound

    write_video_with_sound(tmp_path / "talk.mp4", seconds=1.0, picture=load_image(astronaut))
    analyze_video(tmp_path / "talk.mp4", Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False, html=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto((tmp_path / "out" / "talk.html").as_uri())
        page.wait_for_selector("#timeline .strip", timeout=20_000)
        assert page.inner_text("#sound") == "Sound on"
        page.click("#play")
        page.wait_for_function("() => document.getElementById('clip').ended", timeout=10_000)
        assert page.evaluate("() => [document.getElementById('clip').muted,"
                             " document.getElementById('clip').webkitAudioDecodedByteCount > 0]") == [False, True]
        page.click("#sound")
        assert page.inner_text("#sound") == "Sound off" and page.evaluate("() => document.getElementById('clip').muted")
        page.click("#play")  # played again, silent
        assert page.evaluate("() => document.getElementById('clip').muted")
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_several_faces_get_a_strip_of_all_faces_together_and_subtitles_as_ferlab_writes(tmp_path):
    from playwright.sync_api import sync_playwright

    from ferlab.subtitles import subtitle_text, track_cues
    from ferlab.video import video_answer

    from .conftest import face_record as face

    # track 0 happy throughout, track 1 sad from the middle: together happy, then a tie read as the first label
    crowd = [{"frame": i, "time_s": i / 10, "faces": [face(0, "Happy")] + ([face(1, "Sad")] if i >= 5 else [])}
             for i in range(10)]
    answer = video_answer(crowd, 1, 10.0, 10, 640, 480)
    assert answer["all_faces"]["face_frames"] == 15 and answer["all_faces"]["label"] == "Happy"
    # track 0 changes twice and track 1 comes and goes; confidences whose percentages end in a half,
    # and track 0's box centred at 11.25% of the frame's width: both round halves up
    labels = ["Happy"] * 5 + ["Surprise"] * 3 + ["Happy"] * 4
    changing = [{"frame": i, "time_s": round(i / 30, 3),
                 "faces": [face(0, label, [0.125, 0.875, 0.5, 0.6667][i % 4], 22)]
                 + ([face(1, "Sad", 0.3355, 400)] if 3 <= i < 9 else [])} for i, label in enumerate(labels)]
    expected = {form: subtitle_text(track_cues(changing, 30.0, 1), form, 640, 480) for form in ("srt", "vtt")}
    assert expected["srt"].count(" --> ") == 4  # Happy, Sad, Surprise, Happy
    assert "position:11.3% line:4.4%" in expected["vtt"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(write_viewer(tmp_path / "crowd.html", answer, "crowd.mp4", None).as_uri())
        page.wait_for_selector("#timeline .strip", timeout=10_000)
        assert page.locator(".strip span").all_inner_texts() == ["All faces Happy", "#0 Happy", "#1 Sad"]
        assert page.locator(".strip").first.get_attribute("title") == (
            "All 2 faces together, each frame's mean over its faces; of 15 faces in frames: Happy 67%, Sad 33%")

        # the page's Save subtitles and Save WebVTT write the SubRip and WebVTT ferlab.subtitles does
        page.goto(write_viewer(tmp_path / "clip.html", video_answer(changing, 1, 30.0, 12, 640, 480), "clip.mp4",
                               None).as_uri())
        page.wait_for_selector("#save-subtitles:not([hidden])", timeout=10_000)
        for button, form in (("#save-subtitles", "srt"), ("#save-webvtt", "vtt")):
            with page.expect_download() as download:
                page.click(button)
            assert download.value.suggested_filename == f"clip.emotions.{form}"
            assert Path(download.value.path()).read_text() == expected[form]
        browser.close()
