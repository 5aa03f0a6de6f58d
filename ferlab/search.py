"""The paper's randomized hyper-parameter search, on Optuna.

Each trial trains a model for a few epochs (optionally on a subset of Training) and is
scored on PublicTest. The study lives in a database (SQLite file by default), so several
processes or machines can work on one study by passing the same ``storage`` URL.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import optuna
import sqlalchemy

from .data import FER2013
from .train import TrainConfig, train

SAMPLERS = {
    "random": optuna.samplers.RandomSampler,  # the paper's approach
    "tpe": optuna.samplers.TPESampler,
}


# The searched space: Adam's learning rate and betas, batch size, weight decay.
SEARCH_SPACE = {
    "lr": lambda trial: trial.suggest_float("lr", 1e-4, 3e-3, log=True),
    "beta1": lambda trial: trial.suggest_float("beta1", 0.8, 0.95),
    "beta2": lambda trial: trial.suggest_float("beta2", 0.99, 0.9999),
    "batch_size": lambda trial: trial.suggest_categorical("batch_size", [64, 128, 256]),
    "weight_decay": lambda trial: trial.suggest_categorical("weight_decay", [0.0, 1e-5, 1e-4]),
}


def suggest(trial: optuna.Trial, base: TrainConfig, fixed: Collection[str] = ()) -> TrainConfig:
    """``base`` with the searched hyper-parameters drawn for this trial; those named in
    ``fixed`` keep ``base``'s value (a user who sets one wants it held, not searched)."""
    return replace(base, **{name: draw(trial) for name, draw in SEARCH_SPACE.items() if name not in fixed})


def run_search(
    data: FER2013,
    base: TrainConfig,
    out_dir: str | Path,
    n_trials: int,
    storage: str | None = None,
    study_name: str = "ferlab",
    sampler: str = "random",
    seed: int = 0,
    progress: bool = True,
    fixed: Collection[str] = (),
) -> optuna.Study:
    """Run ``n_trials`` more trials (finished trials in the study are kept) and return the study.
    ``fixed`` names searched hyper-parameters held at ``base``'s value."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{out_dir / 'search.db'}"
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    study = _create_or_load(study_name, storage, SAMPLERS[sampler](seed=seed))

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial, base, fixed)
        result = train(config, data, out_dir / f"trial-{trial.number:03d}", resume=True, progress=progress)
        return result["best_val_accuracy"]

    study.optimize(objective, n_trials=n_trials)
    return study


def _create_or_load(study_name: str, storage: str, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """Workers that start together race to create the database schema; the losers retry."""
    attempts = 5
    for attempt in range(attempts):
        try:
            return optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                       sampler=sampler, load_if_exists=True)
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def best_config(study: optuna.Study, base: TrainConfig) -> TrainConfig:
    """``base`` with the best trial's hyper-parameters."""
    return replace(base, **study.best_trial.params)
