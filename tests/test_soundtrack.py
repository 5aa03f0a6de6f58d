import numpy as np
import pytest

from ferlab.soundtrack import add_sound
from ferlab.video import ANNOTATED_CODECS, _open_writer

from .conftest import FPS, write_video_with_sound

av = pytest.importorskip("av")

def silent_copy(source, path, frames=None):
    """What `ferlab.video` writes before the sound: ``source``'s frames (the first ``frames``),
    without sound, in ``path``'s format (MP4 by PyAV's x264, WebM by OpenCV)."""
    with av.open(str(source)) as video:
        pictures = [f.to_ndarray(format="bgr24") for f in video.decode(video=0)][:frames]
    writer = _open_writer(path, FPS, pictures[0].shape, ANNOTATED_CODECS["webm" if path.suffix == ".webm" else "h264"])
    for picture in pictures:
        writer.write(picture)
    writer.release()
    return path


def sound_of(path):
    """The codec of ``path``'s sound, its click's time and its end, in seconds from its start."""
    with av.open(str(path)) as video:
        stream = video.streams.audio[0]
        frames = list(video.decode(stream))
        start = float(frames[0].pts * frames[0].time_base)
        samples = np.concatenate([f.to_ndarray()[0] for f in frames])
        return stream.codec_context.name, start + np.abs(samples).argmax() / stream.rate, start + len(samples) / stream.rate


@pytest.mark.parametrize("source_name, audio_codec, copy_name, expected_codec", [
    ("clip.mp4", "aac", "copy.mp4", "aac"),  # copied as it is
    ("clip.mkv", "pcm_s16le", "copy.mp4", "aac"),  # encoded again: an MP4 takes no PCM
    ("clip.mp4", "aac", "copy.webm", "opus"),  # a WebM takes no AAC
])
def test_the_copy_gets_the_sound_in_time_with_its_frames(tmp_path, source_name, audio_codec, copy_name, expected_codec):
    source = tmp_path / source_name
    write_video_with_sound(source, audio_codec=audio_codec)
    copy = tmp_path / copy_name
    assert add_sound(source, silent_copy(source, tmp_path / f"silent{copy.suffix}"), copy)
    codec, click_s, end_s = sound_of(copy)
    assert codec == expected_codec
    assert click_s == pytest.approx(1.0, abs=0.025)  # one video frame is 0.04 s
    assert end_s == pytest.approx(2.0, abs=0.05)
    with av.open(str(copy)) as video:
        assert sum(1 for _ in video.decode(video=0)) == 50  # the frames as they were


def test_sound_before_the_first_frame_is_left_out_and_after_the_last_cut(tmp_path):
    source = tmp_path / "clip.mkv"
    write_video_with_sound(source, seconds=3.0, click_s=1.0, video_start_s=0.4)
    copy = tmp_path / "copy.mp4"
    assert add_sound(source, silent_copy(source, tmp_path / "silent.mp4", frames=40), copy)  # 1.6 s of 2.6
    _, click_s, end_s = sound_of(copy)
    assert click_s == pytest.approx(0.6, abs=0.025)  # where the copy's frames show the original's 1.0 s
    assert end_s == pytest.approx(1.6, abs=0.05)


def test_a_video_without_sound_gets_nothing_written(tmp_path):
    source = tmp_path / "clip.mp4"
    silent_copy_of_nothing = tmp_path / "frames.mp4"
    write_video_with_sound(source)
    silent_copy(source, silent_copy_of_nothing)
    assert not add_sound(silent_copy_of_nothing, silent_copy_of_nothing, tmp_path / "copy.mp4")
    assert not (tmp_path / "copy.mp4").exists()


@pytest.mark.parametrize("copy_name", ["copy.mp4", "copy.webm"])
def test_a_web_browser_plays_the_copys_sound(tmp_path, copy_name):
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    source, copy = tmp_path / "clip.mp4", tmp_path / copy_name
    write_video_with_sound(source)
    assert add_sound(source, silent_copy(source, tmp_path / f"silent{copy.suffix}"), copy)
    (tmp_path / "play.html").write_text(f'<video id="v" src="{copy_name}" muted></video>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto((tmp_path / "play.html").as_uri())
        decoded = page.evaluate("""() => new Promise((done) => {
            const v = document.getElementById("v");
            v.onerror = () => done("error " + v.error.code);
            v.onended = () => done(v.webkitAudioDecodedByteCount);
            v.play().catch((error) => done(String(error)));
        })""")
        browser.close()
    assert isinstance(decoded, int) and decoded > 0, decoded
