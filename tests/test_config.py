import numpy as np
import pytest

from ferlab.config import TrainConfig


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})
    assert np.isclose(TrainConfig.from_dict({"lr": 0.5}).lr, 0.5)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("distill_weight", 1.5, r"distill_weight must be in \[0, 1\]"),
    ("ema_decay", 1.0, r"ema_decay must be in \[0, 1\)"),
    ("lr", 0.0, "lr must be above 0"),
    ("batch_size", 1, "batch_size must be at least 2"),
    ("augment", "stronger", "unknown augment 'stronger'; use one of none, light, strong"),
    ("schedule", "step", "unknown schedule"),
])
def test_bad_option_values_are_refused_before_any_work(option, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{option: value})
