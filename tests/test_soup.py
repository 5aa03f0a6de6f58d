import json

import pytest
import torch
from safetensors.torch import load_file

from ferlab.cli import main
from ferlab.data import load_fer2013
from ferlab.models import load_trained
from ferlab.soup import make_soup
from ferlab.train import TrainConfig, train

FAST = dict(model_options={"widths": [8, 16, 16], "convs_per_block": 1, "hidden": 16}, batch_size=32)


@pytest.fixture
def fine_tunes(tiny_csv, tmp_path):
    """A trained start and two fine-tunes of it (other seeds) on the tiny data set."""
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **FAST), data, tmp_path / "start", progress=False)
    for seed in (1, 2):
        config = TrainConfig(epochs=1, lr=3e-3, seed=seed, init=str(tmp_path / "start"), **FAST)
        train(config, data, tmp_path / f"tuned{seed}", progress=False)
    return data, tmp_path


def test_a_soup_averages_the_weights_of_fine_tunes_of_one_start(fine_tunes):
    data, tmp_path = fine_tunes
    runs = [tmp_path / "tuned1", tmp_path / "tuned2"]
    out = make_soup(runs, data, tmp_path / "soup")
    soup, card = load_trained(out)
    ingredients = [load_file(str(run / "best.safetensors")) for run in runs]
    averaged = load_file(str(out / "best.safetensors"))
    weights = [name for name in averaged if name.endswith("weight")]
    assert not torch.allclose(ingredients[0][weights[0]], ingredients[1][weights[0]])  # they do differ
    for name in weights:
        torch.testing.assert_close(averaged[name], (ingredients[0][name] + ingredients[1][name]) / 2)
    assert set(card["soup_of"]) == {str(run) for run in runs}
    assert soup(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_a_soup_refuses_runs_not_fine_tuned_from_the_same_start(fine_tunes):
    data, tmp_path = fine_tunes
    with pytest.raises(ValueError, match="same weights"):
        make_soup([tmp_path / "tuned1", tmp_path / "start"], data, tmp_path / "soup")
    with pytest.raises(ValueError, match="at least two"):
        make_soup([tmp_path / "tuned1"], data, tmp_path / "soup")


def test_soup_command_writes_weights_and_metrics(fine_tunes, tiny_csv, capsys):
    _, tmp_path = fine_tunes
    out = tmp_path / "soup"
    assert main(["soup", str(tmp_path / "tuned1"), str(tmp_path / "tuned2"), "--data", str(tiny_csv),
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and "soup of 2" in capsys.readouterr().out
    assert main(["soup", str(tmp_path / "tuned1"), str(tmp_path / "start"), "--data", str(tiny_csv),
                 "--out", str(out)]) == 2  # one clear line, not a traceback
