"""Shared fixtures: small FER2013-format data made on the fly, and an isolated cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
