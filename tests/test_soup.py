import json

import pytest
import torch
from safetensors.torch import load_file

from ferlab.cli import main
from ferlab.data import load_fer2013
from ferlab.models import load_trained
from ferlab.soup import make_soup
from ferlab.train import TrainConfig, train

from .conftest import TINY_TRAINING, write_tiny_csv


@pytest.fixture(scope="module")
def fine_tunes(tmp_path_factory):
    """A trained start and two fine-tunes of it (other seeds) on small synthetic data, made
    once for this module's tests: the tiny CSV, its data set and the folder of the runs."""
    root = tmp_path_factory.mktemp("soup")
    csv = write_tiny_csv(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FERLAB_CACHE", str(root / "cache"))
        data = load_fer2013(csv)
        train(TrainConfig(epochs=1, **TINY_TRAINING), data, root / "start", progress=False)
        for seed in (1, 2):
            config = TrainConfig(epochs=1, lr=3e-3, seed=seed, init=str(root / "start"), **TINY_TRAINING)
            train(config, data, root / f"tuned{seed}", progress=False)
    return csv, data, root


def test_a_soup_averages_the_weights_of_fine_tunes_of_one_start(fine_tunes, tmp_path):
    _, data, root = fine_tunes
    runs = [root / "tuned1", root / "tuned2"]
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


def test_a_soup_refuses_runs_not_fine_tuned_from_the_same_start(fine_tunes, tmp_path):
    _, data, root = fine_tunes
    with pytest.raises(ValueError, match="same weights"):
        make_soup([root / "tuned1", root / "start"], data, tmp_path / "soup")
    with pytest.raises(ValueError, match="at least two"):
        make_soup([root / "tuned1"], data, tmp_path / "soup")


def test_soup_command_writes_weights_and_metrics(fine_tunes, tmp_path, capsys):
    csv, _, root = fine_tunes
    out = tmp_path / "soup"
    assert main(["soup", str(root / "tuned1"), str(root / "tuned2"), "--data", str(csv), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and "soup of 2" in capsys.readouterr().out
    # Runs of different starts: one clear line and exit code 2, not a traceback.
    assert main(["soup", str(root / "tuned1"), str(root / "start"), "--data", str(csv), "--out", str(out)]) == 2
    # ... and it says so before reading the data: a missing file is not what it reports.
    capsys.readouterr()
    assert main(["soup", str(root / "tuned1"), str(root / "start"), "--data", str(tmp_path / "none.csv"),
                 "--out", str(out)]) == 2
    assert "same weights" in capsys.readouterr().err


def test_a_packaged_soup_says_what_it_is_in_its_card(fine_tunes, tmp_path):
    csv, data, root = fine_tunes
    soup = make_soup([root / "tuned1", root / "tuned2"], data, tmp_path / "soup")
    out = tmp_path / "pretrained"
    assert main(["package-model", str(soup), "--data", str(csv), "--out", str(out), "--name", "m",
                 "--command", "ferlab soup ..."]) == 0
    assert "the uniform average of the weights of 2 fine-tunes" in (out / "m.md").read_text()
