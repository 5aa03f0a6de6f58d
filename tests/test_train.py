import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ferlab.train as train_module
from ferlab.data import load_fer2013
from ferlab.evaluate import predict_logits
from ferlab.models import load_trained
from ferlab.train import TrainConfig, augment_batch, train

FAST = dict(model_options={"widths": [8, 16, 16], "convs_per_block": 1, "hidden": 16}, batch_size=32)


def test_tiny_run_overfits_64_images(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv).subset(train_rows=64, eval_rows=70)
    options = {**FAST["model_options"], "dropout": 0.0}
    config = TrainConfig(epochs=30, lr=3e-3, augment="none", batch_size=16, model_options=options)
    train(config, data, tmp_path / "run", progress=False)
    model, card = load_trained(tmp_path / "run")
    assert card["model"] == "paper_cnn" and card["input"]["size"] == 48
    images, labels = data.split("Training")
    assert (predict_logits(model, images).argmax(1) == labels).mean() >= 0.95
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 30 and {"train_loss", "val_accuracy", "seconds"} <= history[0].keys()


def test_resume_after_a_kill_ends_with_identical_weights(tiny_csv, tmp_path, monkeypatch):
    data = load_fer2013(tiny_csv)
    config = TrainConfig(epochs=3, **FAST)
    train(config, data, tmp_path / "straight", progress=False)

    real_epoch = train_module.train_one_epoch
    calls = {"n": 0}

    def dies_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # stands in for a kill in the middle of an epoch
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(config, data, tmp_path / "killed", progress=False)
    assert len(json.loads((tmp_path / "killed" / "history.json").read_text())) == 2
    assert not list((tmp_path / "killed").glob("*.tmp"))

    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    train(config, data, tmp_path / "killed", resume=True, progress=False)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    resumed = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["model"]
    for key in straight:
        torch.testing.assert_close(straight[key], resumed[key], rtol=0, atol=0)
    best_a = load_file(tmp_path / "straight" / "best.safetensors")
    best_b = load_file(tmp_path / "killed" / "best.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_resume_refuses_a_different_config(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **FAST), data, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(TrainConfig(epochs=2, lr=0.01, **FAST), data, tmp_path / "run", progress=False)


@pytest.mark.parametrize("mode", ["none", "light", "strong"])
def test_augmentation_keeps_shape_and_is_seeded(mode):
    images = torch.rand(8, 1, 48, 48)
    a = augment_batch(images, mode, torch.Generator().manual_seed(1))
    b = augment_batch(images, mode, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and torch.equal(a, b)
    if mode != "none":
        assert not torch.equal(a, images)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})
    assert np.isclose(TrainConfig.from_dict({"lr": 0.5}).lr, 0.5)
