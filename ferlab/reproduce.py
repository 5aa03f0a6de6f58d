"""`ferlab reproduce`: every table and figure of the paper, end to end, resumable.

Stages, each skipped when its output already exists in the run folder:
1. ``stats.json``      counts, duplicates and constant images of the data;
2. ``baselines.json``  LDA, QDA, logistic regression (Table 1);
3. ``search/``         randomized search of Adam's hyper-parameters on PublicTest;
4. ``models/<name>/``  the paper's CNN and its two ablations with the best parameters;
5. ``metrics.json``, ``report.md``, ``report.html`` and ``figures/``.
A killed run picks up at the last finished stage (and the last finished epoch).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .atomic import atomic_write_text
from .baselines import fit_baselines
from .data import FER2013, dataset_stats, load_fer2013
from .evaluate import evaluate_trained
from .report import build_report
from .search import run_search
from .train import TrainConfig, train

PAPER_MODELS = ("paper_cnn", "paper_cnn_no_bn", "paper_cnn_no_dropout")


@dataclass
class ReproduceConfig:
    epochs: int = 30
    search_trials: int = 6
    search_epochs: int = 3
    search_train_images: int = 8000
    train_rows: int | None = None  # None: all of FER2013
    eval_rows: int | None = None
    augment: str = "light"
    seed: int = 0

    @classmethod
    def quick(cls) -> ReproduceConfig:
        """A smoke run of a few minutes: 4,000 training faces, 1,000 per test split, two epochs."""
        return cls(epochs=2, search_trials=2, search_epochs=1, search_train_images=2000, train_rows=4000, eval_rows=1000)

    def select(self, data: FER2013) -> FER2013:
        """The rows of ``data`` this run uses."""
        if self.train_rows is None:
            return data
        return data.subset(self.train_rows, self.eval_rows or self.train_rows, self.seed)


def _stage(path: Path, compute, log) -> dict:
    if path.exists():
        log(f"[skip] {path.name} already done")
        return json.loads(path.read_text())
    result = compute()
    atomic_write_text(path, json.dumps(result, indent=2))
    return result


def reproduce(data_path: str | Path, out_dir: str | Path, config: ReproduceConfig, log=print, progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = config.select(load_fer2013(data_path))
    atomic_write_text(out_dir / "run.json", json.dumps({"data": str(Path(data_path).resolve()), **asdict(config)}, indent=2))

    log("== data statistics")
    _stage(out_dir / "stats.json", lambda: dataset_stats(data), log)
    log("== baselines (Table 1)")
    _stage(out_dir / "baselines.json", lambda: fit_baselines(data, log), log)

    log("== randomized hyper-parameter search")
    base = TrainConfig(augment=config.augment, seed=config.seed)

    def search() -> dict:
        trial_base = replace(base, epochs=config.search_epochs, max_train=config.search_train_images)
        study = run_search(data, trial_base, out_dir / "search", config.search_trials, seed=config.seed, progress=progress)
        trials = [{"number": t.number, "value": t.value, "state": t.state.name, **t.params} for t in study.trials]
        return {"best_params": study.best_trial.params, "best_value": study.best_value, "trials": trials}

    searched = _stage(out_dir / "search.json", search, log)
    final = replace(base, epochs=config.epochs, **searched["best_params"])

    metrics = {}
    for name in PAPER_MODELS:
        log(f"== training {name} for {final.epochs} epochs")
        model_dir = out_dir / "models" / name
        train(replace(final, model=name), data, model_dir, resume=True, progress=progress)
        metrics[name] = _stage(model_dir / "metrics.json", lambda d=model_dir: evaluate_trained(d, data), log)
        log(f"{name}: val {metrics[name]['val']['accuracy']:.3f}  test {metrics[name]['test']['accuracy']:.3f}")

    log("== report")
    paths = build_report(out_dir, data)
    atomic_write_text(out_dir / "wall_seconds.json", json.dumps({"last_invocation_seconds": time.perf_counter() - started}))
    log(f"report: {paths['markdown']} and {paths['html']}")
    return metrics
