"""Shared fixtures: small FER2013-format data made on the fly, and an isolated cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ferlab.data import SPLITS

# A network small enough for a training test to take seconds (paper_cnn's options).
TINY_TRAINING = dict(model_options={"widths": [8, 16, 16], "convs_per_block": 1, "hidden": 16}, batch_size=32)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.csv.gz"


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 48x48 images whose class is a bright square at one of seven positions,
    so that a small CNN can learn them in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    images = rng.integers(0, 90, size=(n, 48, 48), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 3)
        images[i, 4 + 14 * row : 16 + 14 * row, 4 + 14 * col : 16 + 14 * col] = 230
    return images, labels


def csv_text(images: np.ndarray, labels: np.ndarray, usage: list[str]) -> str:
    rows = ["emotion,pixels,Usage"]
    for image, label, split in zip(images, labels, usage, strict=True):
        rows.append(f"{label},{' '.join(map(str, image.ravel()))},{split}")
    return "\n".join(rows) + "\n"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERLAB_CACHE", str(tmp_path / "cache"))


def write_tiny_csv(folder: Path) -> Path:
    """A FER2013 CSV with 140 Training, 70 PublicTest and 70 PrivateTest rows, in ``folder``."""
    counts = {"Training": 140, "PublicTest": 70, "PrivateTest": 70}
    images, labels = synthetic_faces(sum(counts.values()))
    usage = [split for split in SPLITS for _ in range(counts[split])]
    path = folder / "fer2013.csv"
    path.write_text(csv_text(images, labels, usage))
    return path


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_tiny_csv(tmp_path)


@pytest.fixture(scope="session")
def real_fer2013():
    """The real FER2013 file, parsed once per test session (about 20 s)."""
    if not REAL_DATA.exists():
        pytest.skip("real FER2013 file not present")
    from ferlab.data import load_fer2013

    return load_fer2013(REAL_DATA, cache=False)


ASTRONAUT_FACE = (178, 67, 92, 92)  # x, y, w, h of the face in ferlab/assets/astronaut.jpg


def face_in_shadow(photo: np.ndarray, light: float) -> np.ndarray:
    """The astronaut ``photo`` (RGB) with her face, and 30 pixels round it, at ``light`` of its
    brightness and the rest as it was: the photo as a whole keeps its contrast."""
    shadowed = photo.astype(np.float32)
    x, y, w, h = ASTRONAUT_FACE
    shadowed[y - 30 : y + h + 30, x - 30 : x + w + 30] *= light
    return np.round(shadowed).astype(np.uint8)


@pytest.fixture
def astronaut() -> Path:
    return Path(__file__).resolve().parents[1] / "ferlab" / "assets" / "astronaut.jpg"


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """A small, untrained paper-style CNN saved as ferlab saves every model (weights + card)."""
    import torch

    from ferlab.models import create_model
    from ferlab.train import TrainConfig, save_weights

    config = TrainConfig(model_options={"widths": [8, 16, 16], "convs_per_block": 1, "hidden": 16})
    torch.manual_seed(0)
    model = create_model(config.model, **config.model_options)
    out = tmp_path / "tiny-model"
    out.mkdir()
    save_weights(model, config, out, {"epoch": 0, "val_accuracy": 0.0})
    return out


def run_at_once(works: list[Callable[[], None]]) -> list[Exception]:
    """Runs each of ``works`` in its own thread, all released at the same moment (a race);
    returns the exceptions they raised."""
    start, errors = threading.Barrier(len(works)), []

    def run(work: Callable[[], None]) -> None:
        start.wait()
        try:
            work()
        except Exception as error:  # noqa: BLE001  (collected for the test to report)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def run_without_training_tools(code: str, cwd) -> str:
    """Runs ``code`` in a fresh interpreter in which the modules of the training extra cannot
    be imported, as after `pip install ferlab` without "[train]"; returns what it printed."""
    import subprocess
    import sys

    from ferlab.cli import TRAINING_MODULES

    # A finder that fails their imports as for a package not installed; None entries in
    # sys.modules would not do: libraries that look for torch there (SciPy) take them for it.
    blocked = f"""import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {sorted(TRAINING_MODULES)}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""
    result = subprocess.run([sys.executable, "-c", blocked + code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


FPS, RATE = 25, 48000  # of write_video_with_sound


def write_video_with_sound(path, seconds=2.0, click_s=1.0, video_start_s=0.0, audio_codec="aac", picture=None):
    """An H.264 video (by PyAV) of ``picture`` (RGB, default grey) brightening frame by frame,
    and a silent sound track with one loud click at ``click_s`` (in the file's time); its video
    may start later than its sound (``video_start_s``)."""
    av = pytest.importorskip("av")
    picture = np.full((48, 64, 3), 100, np.uint8) if picture is None else picture
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.height, video.width = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2
        video.pix_fmt = "yuv420p"
        sound = out.add_stream(audio_codec, rate=RATE)
        sound.layout = "mono"
        for i in range(int(seconds * FPS)):
            brighter = np.clip(picture[: video.height, : video.width].astype(int) + i % 20, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(brighter, format="rgb24")
            frame.pts, frame.time_base = i + round(video_start_s * FPS), Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = np.zeros(int(seconds * RATE), np.float32)
        samples[int(click_s * RATE):int(click_s * RATE) + 48] = 0.9
        form, size = sound.codec_context.format.name, sound.codec_context.frame_size or 1024
        for start in range(0, len(samples), size):
            chunk = samples[None, start:start + size]
            if form.startswith("s16"):
                chunk = (chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=form, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))


def write_webm_without_length(path, picture, frames: int = 6) -> bytes:
    """A WebM that does not say how many frames it has, as a browser's MediaRecorder writes
    (PyAV's muxer in live mode: no duration, no index)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w", options={"live": "1"}) as out:
        video = out.add_stream("libvpx", rate=10)
        video.height, video.width, video.pix_fmt = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[: video.height, : video.width]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return Path(path).read_bytes()


def write_timed_video(path, pictures, times_ms, codec: str = "libvpx", rate: int = 1000) -> Path:
    """A video (by PyAV) of ``pictures`` (RGB, one size) shown at ``times_ms``: a variable frame
    rate, as phones and browsers record; its stream says ``rate`` frames a second, which FFmpeg
    gives as its frame rate: a browser's MediaRecorder WebM says 1000 (its time base), a phone's
    MP4 about its mean rate."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.height, video.width, video.pix_fmt = pictures[0].shape[0], pictures[0].shape[1], "yuv420p"
        video.time_base = Fraction(1, 1000)
        for picture, time_ms in zip(pictures, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return Path(path)


def face_record(track: int, label: str, confidence: float = 0.8, x: int = 100) -> dict:
    """A face as a video's analysis gives it (`ferlab.analyze`'s record with its track): a
    100-pixel box at ``x``, ``label`` at ``confidence`` and the rest shared by the other six."""
    from ferlab.data import EMOTIONS

    return {"track": track, "label": label, "confidence": confidence, "box": [x, 50, 100, 100],
            "probabilities": {e: confidence if e == label else (1 - confidence) / 6 for e in EMOTIONS}}
