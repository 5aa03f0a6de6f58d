import shutil

import cv2
import pytest

from ferlab.subtitles import Cue, subtitle_text, track_cues, write_subtitles

from .conftest import face_record as face

FRAMES = [
    {"time_s": 0.0, "faces": [face(1, "Happy", 0.9)]},
    {"time_s": 0.2, "faces": [face(1, "Happy", 0.7), face(2, "Neutral", 0.6, x=500)]},
    {"time_s": 0.4, "faces": [face(1, "Happy", 0.8), face(2, "Neutral", 0.5, x=500)]},
    {"time_s": 0.6, "faces": [face(1, "Sad", 0.55)]},  # 1 turns sad, 2 is gone
]


def test_a_cue_per_track_for_as_long_as_its_label_stays():
    cues = track_cues(FRAMES, fps=5.0, every=1)
    assert [(c.track, c.label, c.start_s, c.end_s) for c in cues] == [
        (1, "Happy", 0.0, 0.6), (2, "Neutral", 0.2, 0.6), (1, "Sad", 0.6, pytest.approx(0.8))]
    assert cues[0].confidence == pytest.approx(0.8) and cues[0].box == (100, 50, 100, 100)
    assert track_cues([{"time_s": 0.0, "faces": []}], 25.0, 1) == []


def test_subrip_and_webvtt_text():
    cues = track_cues(FRAMES, fps=5.0, every=1)
    assert subtitle_text(cues, "srt", 800, 600).startswith(
        "1\n00:00:00,000 --> 00:00:00,600\n1: Happy 80%\n\n2\n00:00:00,200 --> 00:00:00,600\n2: Neutral 55%\n\n")
    vtt = subtitle_text(cues, "vtt", 800, 600)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.600 position:18.8% line:2.3% align:center size:30%\n"
                          "1: Happy 80%\n")  # over the face: its centre at 150 of 800 pixels, its top at 50 of 600
    assert subtitle_text(cues, "csv", 800, 600).splitlines() == [
        "track,label,start_s,end_s,confidence", "1,Happy,0.000,0.600,0.8000", "2,Neutral,0.200,0.600,0.5500",
        "1,Sad,0.600,0.800,0.5500"]
    late = [Cue(3, "Fear", 3725.5, 3726.25, 0.5, (0, 0, 10, 10))]
    assert "01:02:05,500 --> 01:02:06,250" in subtitle_text(late, "srt", 100, 100)
    with pytest.raises(ValueError, match=r"subtitles are SubRip \(srt\), WebVTT \(vtt\) or a table \(csv\)"):
        subtitle_text(cues, "ass", 800, 600)


def test_write_subtitles_picks_the_format_by_suffix(tmp_path):
    cues = track_cues(FRAMES, fps=5.0, every=1)
    assert write_subtitles(tmp_path / "a.srt", cues, 800, 600).read_text().startswith("1\n00:00:00,000")
    assert write_subtitles(tmp_path / "a.vtt", cues, 800, 600).read_text().startswith("WEBVTT")


def test_ferlab_video_writes_subtitles_a_web_browser_shows(astronaut, tiny_model, tmp_path, capsys):
    from ferlab.cli import main

    picture = cv2.imread(str(astronaut))
    writer = cv2.VideoWriter(str(tmp_path / "clip.webm"), cv2.VideoWriter_fourcc(*"VP80"), 10, picture.shape[1::-1])
    for i in range(10):
        writer.write(picture if i < 6 else picture * 0 + 127)  # the face, then 0.4 s without it
    writer.release()
    out = tmp_path / "out"
    assert main(["video", str(tmp_path / "clip.webm"), "--model", str(tiny_model), "--out", str(out), "--quiet",
                 "--every", "2", "--subtitles"]) == 0
    assert capsys.readouterr().out.count('"subtitles"') == 1
    srt = (out / "clip.emotions.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,600\n0: ")  # track 0, until the frame without it
    assert main(["video", str(tmp_path / "clip.webm"), "--model", str(tiny_model), "--out", str(out), "--quiet",
                 "--subtitles", "vtt", "csv"]) == 0
    assert (out / "clip.emotions.vtt").read_text().startswith("WEBVTT")
    assert (out / "clip.emotions.csv").read_text().startswith("track,label,start_s,end_s,confidence\n0,")
    with pytest.raises(ValueError, match="subtitles are srt, vtt or csv, not ass"):
        from ferlab.video import analyze_video

        analyze_video(tmp_path / "clip.webm", None, out, subtitles=["ass"])

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    (out / "play.html").write_text('<video id="v" src="../clip.webm" muted>'
                                   '<track default kind="subtitles" src="clip.emotions.vtt"></video>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--headless", "--no-sandbox", "--allow-file-access-from-files"])
        page = browser.new_page()
        page.goto((out / "play.html").as_uri())
        page.wait_for_function("() => document.getElementById('v').textTracks[0].cues?.length > 0", timeout=10_000)
        cue = page.evaluate("() => { const c = document.getElementById('v').textTracks[0].cues[0];"
                            " return [c.startTime, c.endTime, c.text, c.align]; }")
        browser.close()
    assert cue[:2] == [0, 0.6] and cue[2].startswith("0: ") and cue[3] == "center"
