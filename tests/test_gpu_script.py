"""scripts/gpu_train.sh runs on any machine: here on the CPU, with tiny data and a tiny model."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from ferlab.data import load_fer2013, write_packed

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_train.sh"


def test_gpu_script_probes_trains_and_returns_results(tiny_csv, tmp_path):
    packed = write_packed(load_fer2013(tiny_csv, cache=False), tmp_path / "fer.packed.npz")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "WORK": str(tmp_path / "work" / "gpu"),
           "EXTRA_ARGS": "--model-option hidden=16 --batch-size 32"}
    result = subprocess.run(["bash", str(SCRIPT), str(packed), str(out), "0.2", "fast_cnn:0"],
                            cwd=SCRIPT.parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fast_cnn-s0:" in result.stdout and "epochs" in result.stdout
    assert (out / "fast_cnn-s0.safetensors").stat().st_size > 0
    with tarfile.open(out / "results.tar.gz") as archive:
        names = archive.getnames()
    assert "gpu/fast_cnn-s0/history.json" in names and "gpu/probe-fast_cnn-s0/history.json" in names
    assert any(name.startswith("gpu/fast_cnn-s0/") and name.endswith("metrics.json") for name in names)
