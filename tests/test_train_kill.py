"""A real `kill -9` in the middle of training, then --resume: same weights as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

ARGS = ["--epochs", "8", "--batch-size", "16", "--model-option", "widths=[8,16,16]",
        "--model-option", "convs_per_block=1", "--model-option", "hidden=16"]


def ferlab(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ferlab.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_then_resume_matches_an_uninterrupted_run(tiny_csv, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert ferlab("train", "--data", str(tiny_csv), "--out", str(straight), *ARGS).wait(120) == 0

    process = ferlab("train", "--data", str(tiny_csv), "--out", str(killed), *ARGS)
    history = killed / "history.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.exists() and len(json.loads(history.read_text())) >= 2):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    epochs_done = len(json.loads(history.read_text()))
    assert 2 <= epochs_done < 8, "the kill should land before the run ends"

    assert ferlab("train", "--data", str(tiny_csv), "--out", str(killed), "--resume", *ARGS).wait(120) == 0
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(killed / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["val_accuracy"] for r in a["history"]] == [r["val_accuracy"] for r in b["history"]]
    metrics = [json.loads((run / "metrics.json").read_text())["test"] for run in (straight, killed)]
    assert metrics[0] == metrics[1]
