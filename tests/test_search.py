import optuna

from ferlab.search import SEARCH_SPACE, best_config, suggest
from ferlab.train import TrainConfig


def test_a_trial_draws_every_searched_hyper_parameter_but_the_fixed_ones():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    base = TrainConfig(lr=0.123, batch_size=16)
    trial = study.ask()
    config = suggest(trial, base, fixed=["lr", "batch_size"])
    assert (config.lr, config.batch_size) == (0.123, 16)
    assert set(trial.params) == set(SEARCH_SPACE) - {"lr", "batch_size"}
    assert config.beta1 == trial.params["beta1"] != base.beta1
    study.tell(trial, 0.5)
    assert best_config(study, base).lr == 0.123
