import csv
import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS
from ferlab.imageio import load_image
from ferlab.predict import Analyzer
from ferlab.video import (
    VideoError,
    VideoStream,
    analyze_video,
    analyze_videos,
    done_before,
    draw_video,
    read_faces,
    summary_rows,
    video_answer,
)

from .conftest import write_timed_video, write_video_with_sound, write_webm_without_length


def write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_timeline_plot_and_annotated_video(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    blank = face * 0 + 127
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 6 + [blank] * 4)
    result = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", every=2, annotate=True,
                           progress=False)
    assert result["frames"] == 10 and result["analyzed_frames"] == 5
    with open(result["timeline"]) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame"]) for r in rows] == [0, 2, 4]
    assert [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.2, 0.4], abs=0.01)
    assert (tmp_path / "out" / "clip.emotions.png").stat().st_size > 0
    annotated = cv2.VideoCapture(result["annotated"])
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    fourcc = int(annotated.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert fourcc == ("h264" if importlib.util.find_spec("av") else "mp4v")  # H.264 where PyAV is installed


@pytest.mark.parametrize("codec, suffix", [("webm", "webm"), ("h264", "mp4")])
def test_webm_and_h264_copies_play_in_a_web_browser(astronaut, tiny_model, tmp_path, codec, suffix):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 4)
    if codec == "h264":
        pytest.importorskip("av")
    result = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", annotate=codec, progress=False)
    assert result["annotated"] == str(tmp_path / "out" / f"clip.annotated.{suffix}")
    copy = cv2.VideoCapture(result["annotated"])
    assert sum(1 for _ in iter(lambda: copy.read()[0], False)) == 4
    with pytest.raises(ValueError, match="annotate must be True, False or one of mp4, webm, h264"):
        analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path, annotate="avi", progress=False)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "out" / "play.html"
    page_file.write_text(f'<video id="v" src="clip.annotated.{suffix}" muted></video>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(page_file.as_uri())
        state = page.evaluate("""() => new Promise((done) => {
            const v = document.getElementById("v");
            if (v.readyState >= 2) done([v.videoWidth, v.videoHeight]);
            v.onloadeddata = () => done([v.videoWidth, v.videoHeight]);
            v.onerror = () => done("error " + v.error.code);
            setTimeout(() => done("timeout"), 10000);
        })""")
        browser.close()
    assert state == [512, 512]


def decoded(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    return frames


def test_draw_video_gives_the_analysis_copy_without_analysing_again(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 5 + [np.roll(face, 40, axis=1)] * 5)
    found = {}
    result = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", every=2, annotate="mp4",
                           progress=False, on_frame=lambda frame: found.update({frame.index: frame.faces}))
    assert sorted(found) == [0, 2, 4, 6, 8] and all(found.values())

    drawn = draw_video(video, found, 2, tmp_path / "drawn.mp4", "mp4")
    assert drawn == tmp_path / "drawn.mp4"
    copies = decoded(result["annotated"]), decoded(drawn)
    assert len(copies[0]) == len(copies[1]) == 5
    assert all(np.array_equal(a, b) for a, b in zip(*copies, strict=True))  # the same pixels, the same encoder
    assert cv2.VideoCapture(str(drawn)).get(cv2.CAP_PROP_FPS) == pytest.approx(5)  # 10 fps, every 2nd frame

    bare = decoded(draw_video(video, {}, 2, tmp_path / "bare.mp4", "mp4"))
    assert len(bare) == 5 and not any(np.array_equal(a, b) for a, b in zip(bare, copies[1], strict=True))


def audio_codecs(path) -> list[str]:
    import av

    with av.open(str(path)) as video:
        return [stream.codec_context.name for stream in video.streams.audio]


def test_annotated_copies_keep_the_videos_sound(astronaut, tiny_model, tmp_path, monkeypatch):
    import ferlab.video
    from ferlab.soundtrack import SoundError

    video = tmp_path / "talk.mp4"
    write_video_with_sound(video, picture=load_image(astronaut))
    analyzer = Analyzer(load_model(tiny_model))
    result = analyze_video(video, analyzer, tmp_path / "out", every=2, annotate="h264", progress=False)
    assert result["sound"] == "kept" and audio_codecs(result["annotated"]) == ["aac"]
    found, _ = read_faces(result["timeline"])
    assert audio_codecs(draw_video(video, found, 2, tmp_path / "drawn.webm", "webm")) == ["opus"]
    assert not list(tmp_path.glob("*.tmp*")) and not list((tmp_path / "out").glob("*.tmp*"))  # the silent copies

    muted = analyze_video(video, analyzer, tmp_path / "muted", annotate="mp4", progress=False, sound=False)
    assert muted["sound"] == "left out: asked for none" and audio_codecs(muted["annotated"]) == []
    assert audio_codecs(draw_video(video, found, 2, tmp_path / "muted.mp4", "mp4", sound=False)) == []

    def unreadable(source, silent, path):
        raise SoundError(f"{source}: its sound could not be put into the copy: Invalid data")

    monkeypatch.setattr(ferlab.video, "add_sound", unreadable)  # the copy is still written, silent
    broken = analyze_video(video, analyzer, tmp_path / "broken", annotate="mp4", progress=False)
    assert broken["sound"].startswith("left out: ") and broken["sound"].endswith("Invalid data")
    assert audio_codecs(broken["annotated"]) == []
    monkeypatch.setattr(ferlab.video, "h264_available", lambda: False)
    without_pyav = analyze_video(video, analyzer, tmp_path / "without", annotate="mp4", progress=False)
    assert without_pyav["sound"] == 'left out: copying sound needs PyAV: pip install "ferlab[h264]"'


def test_draw_video_refuses_faces_of_another_video(astronaut, tiny_model, tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video, [cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)] * 4)
    face = Analyzer(load_model(tiny_model)).analyze(load_image(astronaut))[0] | {"track": 1}
    with pytest.raises(VideoError, match="clip.mp4: frame 3 is not a multiple of every=2"):
        draw_video(video, {0: [face], 3: [face]}, 2, tmp_path / "copy.mp4", "mp4")
    with pytest.raises(VideoError, match="up to frame 10, the video ends at frame 3: they were found in another video"):
        draw_video(video, {0: [face], 10: [face]}, 1, tmp_path / "copy.mp4", "mp4")
    assert not list(tmp_path.glob("copy*"))  # nothing half-written is left
    with pytest.raises(VideoError, match="no such file"):
        draw_video(tmp_path / "missing.mp4", {}, 1, tmp_path / "copy.mp4", "mp4")


def test_an_earlier_analysis_is_written_and_drawn_again_without_analysing(astronaut, tiny_model, tmp_path,
                                                                          monkeypatch):
    import json

    from ferlab import predict

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 5 + [face * 0 + 127] * 5)
    frames = []
    first = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "first", every=2, annotate="mp4",
                          progress=False, on_frame=lambda f: frames.append(
                              {"frame": f.index, "time_s": round(f.time_s, 3), "faces": f.faces}))
    answer = tmp_path / "clip.json"  # what the web service answers, and the page saves
    answer.write_text(json.dumps(video_answer(frames, 2, 10.0, 10, 512, 512)))

    monkeypatch.setattr(predict, "Analyzer", None)  # no model is loaded: nothing is analyzed
    timeline_faces, every = read_faces(first["timeline"])
    assert every is None and sorted(timeline_faces) == [0, 2, 4] and "landmarks" not in timeline_faces[0][0]
    again = analyze_video(video, None, tmp_path / "again", every=2, progress=False, faces=timeline_faces)
    assert Path(again["timeline"]).read_bytes() == Path(first["timeline"]).read_bytes()
    assert again["tracks"] == first["tracks"]

    answer_faces, every = read_faces(answer)
    assert every == 2 and sorted(answer_faces) == [0, 2, 4, 6, 8] and answer_faces[0][0]["landmarks"]
    drawn = analyze_video(video, None, tmp_path / "drawn", every=2, annotate="mp4", progress=False, faces=answer_faces)
    assert all(np.array_equal(a, b) for a, b in zip(decoded(first["annotated"]), decoded(drawn["annotated"]),
                                                    strict=True))  # the same copy, landmarks and all

    with pytest.raises(VideoError, match="they were found in another video"):
        analyze_video(video, None, tmp_path / "other", annotate="mp4", progress=False, faces={40: answer_faces[0]})
    assert not list((tmp_path / "other").iterdir())  # neither a timeline nor a copy
    with pytest.raises(ValueError, match="not a camera's or a stream's"):
        analyze_video("rtsp://camera.local/live", None, tmp_path / "other", progress=False, faces=answer_faces)
    with pytest.raises(ValueError, match="faces found before are one video's"):
        list(analyze_videos([video, video.with_name("other.mp4")], None, tmp_path / "other", faces=answer_faces))


def test_faces_that_are_not_an_analysis_are_refused_saying_where(tmp_path):
    timeline = tmp_path / "clip.timeline.csv"
    header = "frame,time_s,face,track,x,y,w,h,label,confidence,Angry,Disgust,Fear,Happy,Sad,Surprise,Neutral"
    row = "0,0.000,0,0,10,20,30,30,Happy,0.9,0.0,0.0,0.0,0.9,0.1,0.0,0.0"
    timeline.write_text(f"{header}\n{row}\n{row.replace('Happy', 'Bored')}\n")
    with pytest.raises(VideoError, match=r"clip.timeline.csv, line 3: label: Input should be 'Angry'"):
        read_faces(timeline)
    timeline.write_text(f"{header}\n{row}\n0,0.000,1\n")
    with pytest.raises(VideoError, match="line 3: 3 fields, not 17"):
        read_faces(timeline)
    timeline.write_text("path,face,x\n")
    with pytest.raises(VideoError, match="not a timeline of ferlab video"):
        read_faces(timeline)
    (tmp_path / "a.json").write_text('{"frames": []}')
    with pytest.raises(VideoError, match="a.json: every: Field required: not the JSON of a video's analysis"):
        read_faces(tmp_path / "a.json")
    with pytest.raises(VideoError, match="missing.csv: No such file"):
        read_faces(tmp_path / "missing.csv")
    (tmp_path / "live.json").write_text('{"every": 1, "frames": [], "live": true}')  # the web page's live session
    with pytest.raises(VideoError, match="live.json: a live session's: its frames are numbered as they were analysed"):
        read_faces(tmp_path / "live.json")
    (tmp_path / "untimed.json").write_text('{"every": 1, "frames": [{"frame": 0, "faces": []}], "live": true}')
    with pytest.raises(VideoError, match="live session's frames are drawn by their time_s: give each its own"):
        read_faces(tmp_path / "untimed.json", recording=tmp_path / "any.webm")


def test_a_live_sessions_faces_are_drawn_into_its_recording_by_time(astronaut, tiny_model, tmp_path):
    import json

    recording = tmp_path / "session.webm"  # as the web page records it: 10 frames at 10 a second, no length
    write_webm_without_length(recording, load_image(astronaut), frames=10)
    face = Analyzer(load_model(tiny_model)).analyze(load_image(astronaut))[0]
    session = {"every": 1, "live": True, "frames": [  # analysed at its own pace, timed from the start
        {"frame": 0, "time_s": 0.0, "faces": [face | {"track": 0}]},
        {"frame": 1, "time_s": 0.25, "faces": [face | {"track": 1}]}]}
    (tmp_path / "session.json").write_text(json.dumps(session))
    faces, every = read_faces(tmp_path / "session.json", recording=recording)
    assert every == 1 and sorted(faces) == list(range(8))  # held at most 0.5 s after the last analysed frame
    assert [faces[i][0]["track"] for i in range(8)] == [0, 0, 0, 1, 1, 1, 1, 1]
    drawn = decoded(draw_video(recording, faces, 1, tmp_path / "drawn.mp4", "mp4"))
    bare = decoded(draw_video(recording, {}, 1, tmp_path / "bare.mp4", "mp4"))
    differ = [np.abs(a.astype(int) - b).mean() > 0.8 for a, b in zip(drawn, bare, strict=True)]  # a box and label
    assert differ == [True] * 8 + [False] * 2  # (after a drawn frame, the encoder's prediction leaves a little)


def test_a_phone_video_recorded_upright_is_turned_as_players_turn_it(astronaut, tiny_model, tmp_path):
    """Phones store such a video lying on its side, with a display matrix that says to turn it."""
    import struct

    av = pytest.importorskip("av")
    face = load_image(astronaut)
    landscape = np.ascontiguousarray(np.rot90(cv2.resize(face, (320, 320)), 1))  # turned a quarter to the left
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[20:340, 160:480] = landscape
    with av.open(str(tmp_path / "lying.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode())
    data = bytearray((tmp_path / "lying.mp4").read_bytes())
    matrix = data.index(b"tkhd") + 4 + 40  # the track header's matrix (version 0): turn a quarter to the right
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    (tmp_path / "upright.mp4").write_bytes(bytes(data))
    result = analyze_video(tmp_path / "upright.mp4", Analyzer(load_model(tiny_model)), tmp_path, progress=False)
    with open(result["timeline"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3  # the face, upright, in every frame
    x, y, w, h = (int(rows[0][k]) for k in "xywh")
    assert x + w <= 360 and y + h <= 640 and h > 40  # in the upright frame, 360 wide and 640 high


def test_h264_copies_of_odd_sized_videos_and_without_pyav(astronaut, tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("av")
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)[:383, :301]  # odd sides: cut to 300x382
    write_video(tmp_path / "odd.avi", [face] * 3)
    analyzer = Analyzer(load_model(tiny_model))
    result = analyze_video(tmp_path / "odd.avi", analyzer, tmp_path, annotate="h264", progress=False)
    copy = cv2.VideoCapture(result["annotated"])
    assert (copy.get(cv2.CAP_PROP_FRAME_WIDTH), copy.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (300, 382)
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(VideoError, match=r'pip install "ferlab\[h264\]"'):
        analyze_video(tmp_path / "odd.avi", analyzer, tmp_path, annotate="h264", progress=False)


def test_package_api_runs_the_bundled_model_by_default(astronaut, tmp_path, monkeypatch):
    import ferlab

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 3)
    monkeypatch.chdir(tmp_path)
    result = ferlab.analyze_video(video, progress=False)
    assert (tmp_path / "ferlab-video" / "clip.timeline.csv").samefile(result["timeline"])
    assert [t["label"] for t in result["tracks"]] == ["Happy"] and result["tracks"][0]["analyzed_frames"] == 3


def test_missing_and_broken_videos(tiny_model, tmp_path):
    analyzer = Analyzer(load_model(tiny_model))
    with pytest.raises(VideoError, match="no such file"):
        analyze_video(tmp_path / "none.mp4", analyzer, tmp_path, progress=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(VideoError, match="broken.mp4"):
        analyze_video(broken, analyzer, tmp_path, progress=False)
    assert not list(tmp_path.glob("*.timeline.csv"))
    with pytest.raises(ValueError, match="every must be 1 or more"):
        analyze_video(broken, analyzer, tmp_path, every=0, progress=False)


def test_a_video_that_does_not_say_its_length_is_read_to_its_end(astronaut, tiny_model, tmp_path):
    video = tmp_path / "recording.webm"
    write_webm_without_length(video, load_image(astronaut))
    with VideoStream(video, Analyzer(load_model(tiny_model))) as stream:
        assert stream.total is None  # not FFmpeg's huge negative count
        assert [frame.index for frame in stream] == list(range(6))
    assert analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False)["frames"] == 6


def test_truncated_video_and_zero_frames(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    whole = tmp_path / "whole.mp4"
    write_video(whole, [face] * 10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    analyzer = Analyzer(load_model(tiny_model))
    with pytest.raises(VideoError, match="truncated.mp4"):
        analyze_video(truncated, analyzer, tmp_path / "out", progress=False)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(whole.read_bytes()[:48])  # the container's header and no frame
    with pytest.raises(VideoError, match="empty.mp4"):
        analyze_video(empty, analyzer, tmp_path / "out", progress=False)


def test_variable_frame_rate_keeps_container_timestamps(astronaut, tiny_model, tmp_path):
    times_ms = [0, 100, 150, 400, 1000, 1050]  # uneven gaps: a variable frame rate
    path = write_timed_video(tmp_path / "vfr.mp4", [load_image(astronaut)] * 6, times_ms, "mpeg4")
    result = analyze_video(path, Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False)
    with open(result["timeline"]) as handle:
        seconds = [float(row["time_s"]) for row in csv.DictReader(handle)]
    assert seconds == pytest.approx([t / 1000 for t in times_ms], abs=0.002)


@pytest.mark.parametrize("suffix, codec, rate", [("webm", "libvpx", 1000), ("mp4", "libx264", 30)])
def test_annotated_copies_keep_the_time_of_a_variable_frame_rate(tiny_model, tmp_path, suffix, codec, rate):
    """A browser's recording, whose frame rate FFmpeg gives as 1000 (its time base), and a
    phone's, at its mean rate: each frame of the copy shows the frame of its time."""
    times_ms = [0, 40, 80, 300, 340, 600, 1000, 1033, 1066, 1100, 1500, 1540]
    levels = [20 + 18 * i for i in range(len(times_ms))]  # each frame its own grey
    pictures = [np.full((64, 96, 3), level, np.uint8) for level in levels]
    path = write_timed_video(tmp_path / f"recording.{suffix}", pictures, times_ms, codec, rate)
    with VideoStream(path, Analyzer(load_model(tiny_model))) as video:
        assert video.total is None if rate == 1000 else video.total == 12  # not 1.54 s x 1000
    result = analyze_video(path, Analyzer(load_model(tiny_model)), tmp_path, annotate="mp4", progress=False)
    copy = cv2.VideoCapture(result["annotated"])
    copy_rate, shown = copy.get(cv2.CAP_PROP_FPS), [frame.mean() for frame in decoded(result["annotated"])]
    assert copy_rate == pytest.approx(30 if rate == 1000 else cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS))
    assert len(shown) / copy_rate == pytest.approx(1.54, abs=1.5 / copy_rate)  # as long as the original
    checked = 0
    for k, brightness in enumerate(shown):
        slot_s, half = k / copy_rate, 0.5 / copy_rate
        if any(abs(t / 1000 - slot_s) <= half + 0.002 for t in times_ms):
            continue  # a frame comes within half a frame of this one's time: either may be shown
        expected = levels[max(i for i, t in enumerate(times_ms) if t / 1000 <= slot_s)]
        assert brightness == pytest.approx(expected, abs=6), f"frame {k} of the copy, at {slot_s:.3f} s"
        checked += 1
    assert checked >= len(shown) // 3


@pytest.mark.parametrize("times_s", [[0.0] * 4, [0.0, 0.1, 0.2, 5000.0, 5000.1]])
def test_frames_without_usable_times_are_written_one_each(tmp_path, times_s):
    """A stream without timestamps (every frame at 0), or a jump in its clock, is not a pause
    to fill: each frame is written once, not 50,000 copies of one."""
    from ferlab.video import AnnotatedCopy, VideoFrame

    copy = AnnotatedCopy(tmp_path / "copy.mp4", "mp4v", fps=10)
    for index, time_s in enumerate(times_s):
        copy.write(VideoFrame(index, time_s, [], np.full((48, 64, 3), 40 * index, np.uint8)))
    assert copy.finish("stream", sound=False) == "left out: asked for none"
    assert [round(frame.mean() / 40) for frame in decoded(tmp_path / "copy.mp4")] == list(range(len(times_s)))


def test_two_faces_keep_their_tracks_when_their_sizes_cross(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    frames = []
    for step in range(6):  # the left face shrinks and the right one grows, so "largest first" swaps
        canvas = np.full((420, 960, 3), 127, np.uint8)
        for x, size in ((20, 400 - 30 * step), (520, 250 + 30 * step)):
            canvas[10:10 + size, x:x + size] = cv2.resize(face, (size, size))
        frames.append(canvas)
    video = tmp_path / "two.mp4"
    write_video(video, frames)
    result = analyze_video(video, Analyzer(load_model(tiny_model)), tmp_path / "out", annotate=True, progress=False)
    with open(result["timeline"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and [t["track"] for t in result["tracks"]] == [0, 1]
    assert all(t["analyzed_frames"] == 6 and t["first_s"] == 0.0 for t in result["tracks"])
    for summary in result["tracks"]:
        mine = [row for row in rows if row["track"] == str(summary["track"])]
        assert summary["probabilities"]["Happy"] == pytest.approx(np.mean([float(r["Happy"]) for r in mine]), abs=1e-4)
        assert summary["label"] == max(summary["probabilities"], key=summary["probabilities"].get)
        shares = {e: sum(r["label"] == e for r in mine) / len(mine) for e in EMOTIONS}
        assert summary["label_shares"] == pytest.approx(shares, abs=1e-4)
    left = [row for row in rows if int(row["x"]) < 480]
    right = [row for row in rows if int(row["x"]) >= 480]
    assert {row["face"] for row in left} == {"0", "1"}  # its index in the frame changed...
    assert {row["track"] for row in left} == {"0"}  # ...its track did not
    assert {row["track"] for row in right} == {"1"}

    # all faces together: an audience's mood, every face once per frame
    together = result["all_faces"]
    assert (together["analyzed_frames"], together["face_frames"], together["first_s"]) == (6, 12, 0.0)
    assert together["probabilities"]["Happy"] == pytest.approx(np.mean([float(r["Happy"]) for r in rows]), abs=1e-4)
    assert together["label_shares"] == pytest.approx(
        {e: sum(r["label"] == e for r in rows) / len(rows) for e in EMOTIONS}, abs=1e-4)
    table = summary_rows({"video": "two.mp4", **result})
    assert [row[1] for row in table] == [0, 1, "all"] and table[2][5] == together["label"]
    one_face = {"video": "one.mp4", **result, "tracks": result["tracks"][:1]}
    assert [row[1] for row in summary_rows(one_face)] == [0]  # one track is its own "all"


def test_stream_url_and_max_seconds(astronaut, tiny_model, tmp_path):
    import functools
    import http.server
    import threading

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    write_video(tmp_path / "live.mp4", [face] * 10)  # 10 frames at 10 fps: 0.0 to 0.9 s
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.mp4"
        result = analyze_video(url, Analyzer(load_model(tiny_model)), tmp_path / "out", progress=False,
                               max_seconds=0.45)
    finally:
        server.shutdown()
    assert result["stopped"] == "max_seconds" and result["frames"] == 5
    assert result["timeline"] == str(tmp_path / "out" / "live.timeline.csv")
    with open(result["timeline"]) as handle:
        assert [float(row["time_s"]) for row in csv.DictReader(handle)] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])


def test_unknown_camera_and_stream_say_which(tiny_model, tmp_path):
    analyzer = Analyzer(load_model(tiny_model))
    with pytest.raises(VideoError, match="camera 97: cannot open it"):
        analyze_video(97, analyzer, tmp_path, progress=False)
    with pytest.raises(VideoError, match="http://127.0.0.1:9/none.mp4: cannot open the stream"):
        analyze_video("http://127.0.0.1:9/none.mp4", analyzer, tmp_path, progress=False)
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        analyze_video(97, analyzer, tmp_path, progress=False, max_seconds=0)


def test_ctrl_c_keeps_what_was_analyzed(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 8)
    analyzer = Analyzer(load_model(tiny_model))
    classify, calls = analyzer.model.predict_proba, []

    def interrupted_at_the_fourth_frame(crops):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return classify(crops)

    analyzer.model.predict_proba = interrupted_at_the_fourth_frame
    result = analyze_video(video, analyzer, tmp_path / "out", annotate=True, progress=False)
    assert result["stopped"] == "interrupted" and result["analyzed_frames"] == 3
    with open(result["timeline"]) as handle:
        assert [int(row["frame"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    assert result["tracks"][0]["analyzed_frames"] == 3 and (tmp_path / "out" / "clip.emotions.png").exists()
    assert int(cv2.VideoCapture(result["annotated"]).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert not list((tmp_path / "out").glob("*.tmp*"))


def test_video_stream_yields_tracked_frames_as_they_come(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face] * 5 + [face * 0 + 127] * 2)
    with VideoStream(video, Analyzer(load_model(tiny_model)), every=2) as stream:
        assert stream.total == 7 and stream.fps == pytest.approx(10)
        frames = list(stream)
    assert [f.index for f in frames] == [0, 2, 4, 6] and stream.frames == 7 and stream.stopped == "end"
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6], abs=0.01)
    assert [[face["track"] for face in f.faces] for f in frames] == [[0], [0], [0], []]
    assert frames[0].rgb.shape == face.shape and frames[0].faces[0]["label"] in frames[0].faces[0]["probabilities"]
    with VideoStream(video, Analyzer(load_model(tiny_model)), max_seconds=0.15) as stream:
        assert len(list(stream)) == 2 and stream.stopped == "max_seconds"


def test_smoothing_steadies_a_track_over_time(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    dim = (face * 0.4 + 100).astype(np.uint8)
    write_video(video, [face, dim] * 4)  # the face in full and in low contrast, alternately: the probabilities jump
    analyzer = Analyzer(load_model(tiny_model))
    with VideoStream(video, analyzer, smooth_s=0) as stream:
        raw = [f.faces for f in stream]
    with VideoStream(video, analyzer, smooth_s=1.0) as stream:
        smoothed = [f.faces for f in stream]
    assert all(len(faces) == 1 for faces in raw + smoothed)  # the detector finds both

    def swing(frames):
        probabilities = np.array([list(faces[0]["probabilities"].values()) for faces in frames])
        return np.abs(np.diff(probabilities, axis=0)).sum(1).mean()

    assert smoothed[0][0]["probabilities"] == raw[0][0]["probabilities"]  # nothing to smooth with yet
    assert swing(smoothed) < swing(raw) / 2
    result = analyze_video(video, analyzer, tmp_path / "out", smooth_s=0.5, progress=False)
    assert result["smooth_s"] == 0.5
    with pytest.raises(ValueError, match="time constant"):
        VideoStream(video, analyzer, smooth_s=-1)


def test_a_tracks_label_is_held_until_another_expression_leads_by_the_margin(astronaut, tiny_model, tmp_path):
    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.mp4"
    write_video(video, [face, (face * 0.4 + 100).astype(np.uint8)] * 4)
    analyzer = Analyzer(load_model(tiny_model))
    with VideoStream(video, analyzer, smooth_s=0, label_margin=0) as stream:
        own = [f.faces[0] for f in stream]
    assert all(r["label"] == max(r["probabilities"], key=r["probabilities"].get) for r in own)  # each frame's top
    with VideoStream(video, analyzer, smooth_s=0, label_margin=0.99) as stream:
        held = [f.faces[0] for f in stream]
    assert [r["probabilities"] for r in held] == [r["probabilities"] for r in own]  # the probabilities are left alone
    assert {r["label"] for r in held} == {own[0]["label"]}  # no expression leads by 0.99: the first label stays
    assert all(r["confidence"] == r["probabilities"][r["label"]] for r in held)
    result = analyze_video(video, analyzer, tmp_path / "out", label_margin=0.2, progress=False)
    assert result["label_margin"] == 0.2
    assert done_before(Path(result["summary"]), {"label_margin": 0.2}) is not None
    assert done_before(Path(result["summary"]), {"label_margin": 0.4}) is None  # analyzed otherwise: again
    with pytest.raises(ValueError, match="label margin"):
        VideoStream(video, analyzer, label_margin=1)
