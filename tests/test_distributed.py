"""Scaling out on existing engines: DDP under torchrun (gloo, two CPU processes) and one
Optuna study shared by two search workers through its database."""

import json
import os
import subprocess
import sys

import optuna
import torch

TINY = ["--batch-size", "16", "--model-option", "widths=[8,16,16]", "--model-option", "convs_per_block=1",
        "--model-option", "hidden=16"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# What a failing rank prints about its own end; torchrun's report after it names only a signal.
RANK_ERRORS = ("ferlab: error", "terminate called", "what():", "Error:", "Fatal Python error")


def _failure(result: subprocess.CompletedProcess) -> str:
    """The ranks' own error lines first: torchrun's report fills the end of stderr."""
    errors = [line for line in result.stderr.splitlines() if line.lstrip().startswith(RANK_ERRORS)]
    return "\n".join([*errors, result.stderr[-1500:]])


def test_torchrun_two_cpu_processes_train_one_model(tiny_csv, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "ferlab.cli", "train", "--data", str(tiny_csv), "--out", str(out), "--epochs", "2", *TINY]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, _failure(result)
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2
    state = torch.load(out / "last.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"])  # plain weights, loadable without DDP
    assert json.loads((out / "metrics.json").read_text())["test"]["n"] == 70
    assert result.stdout.count("best epoch") == 1  # only rank 0 reports


def test_two_search_workers_share_one_study(tiny_csv, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    workers = [
        subprocess.Popen([sys.executable, "-m", "ferlab.cli", "search", "--data", str(tiny_csv),
                          "--out", str(tmp_path / f"worker{i}"), "--trials", "2", "--storage", storage,
                          "--study", "shared", "--search-seed", str(i), "--epochs", "1", *TINY],
                         env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for worker in workers:
        assert worker.wait(300) == 0, worker.stderr.read()[-2000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == 4
