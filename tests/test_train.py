import json

import pytest
import torch
from safetensors.torch import load_file

import ferlab.train as train_module
from ferlab.data import file_sha256, load_fer2013
from ferlab.evaluate import predict_logits
from ferlab.models import load_trained
from ferlab.train import (
    TrainConfig,
    augment_batch,
    climb_gradient,
    degrade_batch,
    distillation_loss,
    frozen_batch_norm_statistics,
    mix_batch,
    train,
)

from .conftest import TINY_TRAINING


def test_tiny_run_overfits_64_images(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv).subset(train_rows=64, eval_rows=70)
    options = {**TINY_TRAINING["model_options"], "dropout": 0.0}
    config = TrainConfig(epochs=30, lr=3e-3, augment="none", batch_size=16, model_options=options)
    train(config, data, tmp_path / "run", progress=False)
    model, card = load_trained(tmp_path / "run")
    assert card["model"] == "paper_cnn" and card["input"]["size"] == 48
    images, labels = data.split("Training")
    assert (predict_logits(model, images).argmax(1) == labels).mean() >= 0.95
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 30 and {"train_loss", "val_accuracy", "seconds"} <= history[0].keys()
    assert f"PyTorch {torch.__version__}" in history[0]["machine"]  # speeds are only comparable on one machine


def test_resume_after_a_kill_ends_with_identical_weights(tiny_csv, tmp_path, monkeypatch):
    data = load_fer2013(tiny_csv)
    config = TrainConfig(epochs=3, **TINY_TRAINING)
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
    assert not list((tmp_path / "killed").glob("*.tmp*"))

    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    train(config, data, tmp_path / "killed", resume=True, progress=False)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    resumed = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["model"]
    for key in straight:
        torch.testing.assert_close(straight[key], resumed[key], rtol=0, atol=0)
    best_a = load_file(tmp_path / "straight" / "best.safetensors")
    best_b = load_file(tmp_path / "killed" / "best.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_resume_with_ema_and_cutmix_ends_with_identical_weights(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    config = TrainConfig(epochs=3, ema_decay=0.9, mix="cutmix", mix_prob=1.0, **TINY_TRAINING)
    train(config, data, tmp_path / "straight", progress=False)
    train(config, data, tmp_path / "steps", progress=False, max_minutes=0)  # stops after one epoch
    assert len(json.loads((tmp_path / "steps" / "history.json").read_text())) == 1
    train(config, data, tmp_path / "steps", resume=True, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "steps" / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    # After one epoch (always the best so far) the saved weights are those of the two
    # candidates, the weights or their moving average, that did better on PublicTest.
    train(TrainConfig(epochs=1, ema_decay=0.9, **TINY_TRAINING), data, tmp_path / "one", progress=False)
    best = load_file(tmp_path / "one" / "best.safetensors")
    state = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    row = json.loads((tmp_path / "one" / "history.json").read_text())[0]
    card = json.loads((tmp_path / "one" / "model.json").read_text())
    chosen = "ema" if row["val_accuracy_ema"] > row["val_accuracy_weights"] else "weights"
    assert card["weights"] == chosen and row["val_accuracy"] == row[f"val_accuracy_{chosen}"]
    saved = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    expected = saved if chosen == "ema" else state["model"]
    assert all(torch.equal(best[k], expected[k]) for k in best)
    assert not all(torch.equal(saved[k], state["model"][k]) for k in best)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mix_batch_blends_pairs_and_reports_the_weight(mode):
    images = torch.stack([torch.full((1, 48, 48), float(i)) for i in range(8)])
    labels = torch.arange(8)
    config = TrainConfig(mix=mode, mix_prob=1.0)
    mixed, partner, lam = mix_batch(images, labels, config, torch.Generator().manual_seed(0))
    assert mixed.shape == images.shape and 0.0 <= lam <= 1.0
    # Every mixed face is lam of itself plus (1 - lam) of its partner, on average over pixels.
    expected = lam * labels.float() + (1 - lam) * partner.float()
    torch.testing.assert_close(mixed.mean(dim=(1, 2, 3)), expected, atol=1e-4, rtol=0)
    untouched, same, one = mix_batch(images, labels, TrainConfig(), torch.Generator())
    assert untouched is images and same is labels and one == 1.0


def test_sam_climbs_rho_along_the_gradient_and_leaves_batch_norm_statistics_alone():
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 7))
    x = torch.randn(8, 1, 6, 6)
    torch.nn.functional.cross_entropy(model(x), torch.arange(8) % 7).backward()
    before = [p.detach().clone() for p in model.parameters()]
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    moves = climb_gradient(model, 0.05)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)])
    assert torch.linalg.vector_norm(moved).item() == pytest.approx(0.05, rel=1e-4)
    assert torch.nn.functional.cosine_similarity(moved, grads, 0).item() == pytest.approx(1.0, abs=1e-5)
    assert len(moves) == len(before)
    norm = model[1]
    statistics = norm.running_mean.clone()
    with frozen_batch_norm_statistics(model):
        model(x + 3.0)
    assert torch.equal(norm.running_mean, statistics) and norm.momentum == 0.1
    model(x + 3.0)
    assert not torch.equal(norm.running_mean, statistics)


def test_a_sam_run_learns_and_resumes_to_identical_weights(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv).subset(train_rows=64, eval_rows=70)
    options = {**TINY_TRAINING["model_options"], "dropout": 0.0}
    config = TrainConfig(epochs=20, lr=3e-3, augment="none", batch_size=16, model_options=options, sam_rho=0.05)
    train(config, data, tmp_path / "sam", progress=False)
    images, labels = data.split("Training")
    assert (predict_logits(load_trained(tmp_path / "sam")[0], images).argmax(1) == labels).mean() >= 0.9
    short = TrainConfig(**{**config.__dict__, "epochs": 3})
    train(short, data, tmp_path / "whole", progress=False)
    train(short, data, tmp_path / "halves", progress=False, max_minutes=0.0)  # stops after one epoch
    train(short, data, tmp_path / "halves", progress=False)
    plain = TrainConfig(**{**short.__dict__, "sam_rho": 0.0})
    train(plain, data, tmp_path / "plain", progress=False)
    whole, halves, without = (load_file(tmp_path / run / "best.safetensors") for run in ("whole", "halves", "plain"))
    assert all(torch.equal(whole[k], halves[k]) for k in whole)
    assert not all(torch.equal(whole[k], without[k]) for k in whole)


def test_distillation_loss_is_zero_only_when_the_student_matches():
    teacher_logits = torch.randn(16, 7)
    targets = torch.softmax(teacher_logits / 2.0, 1)
    assert distillation_loss(teacher_logits, targets, 2.0).abs().item() < 1e-6
    assert distillation_loss(torch.randn(16, 7), targets, 2.0).item() > 0.01


def test_a_student_distilled_from_a_teacher_alone_learns_its_answers(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    options = {**TINY_TRAINING["model_options"], "dropout": 0.0}
    train(TrainConfig(epochs=8, lr=3e-3, augment="none", model_options=options, batch_size=16), data,
          tmp_path / "teacher", progress=False)
    # Only the teacher's soft targets (weight 1): the labels play no part in the student's loss.
    student = TrainConfig(epochs=8, lr=3e-3, augment="none", model_options=options, batch_size=16, seed=1,
                          teacher=str(tmp_path / "teacher"), distill_weight=1.0)
    train(student, data, tmp_path / "student", progress=False)
    images, _ = data.split("PublicTest")
    taught = predict_logits(load_trained(tmp_path / "student")[0], images).argmax(1)
    answers = predict_logits(load_trained(tmp_path / "teacher")[0], images).argmax(1)
    assert (taught == answers).mean() >= 0.9
    with pytest.raises(FileNotFoundError):
        train(TrainConfig(epochs=1, teacher=str(tmp_path / "nowhere"), **TINY_TRAINING), data, tmp_path / "x",
              progress=False)


def test_split_teachers_give_each_face_one_teacher_and_the_average_on_the_whole(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    for seed in (0, 1):
        train(TrainConfig(epochs=1, seed=seed, **TINY_TRAINING), data, tmp_path / f"t{seed}", progress=False)
    paths = f"{tmp_path / 't0'},{tmp_path / 't1'}"
    cpu = torch.device("cpu")
    x = torch.randn(10, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    split = train_module.Teacher(paths, 2.0, cpu, "split").soft_targets(x, cpu, "fp32")
    average = train_module.Teacher(paths, 2.0, cpu, "average").soft_targets(x, cpu, "fp32")
    alone = [train_module.Teacher(str(tmp_path / f"t{k}"), 2.0, cpu).soft_targets(x, cpu, "fp32") for k in (0, 1)]
    torch.testing.assert_close(split[0::2], alone[0][0::2])
    torch.testing.assert_close(split[1::2], alone[1][1::2])
    torch.testing.assert_close(average, (alone[0] + alone[1]) / 2)
    assert not torch.allclose(alone[0], alone[1])  # the two teachers do differ


def test_resume_refuses_a_teacher_replaced_under_the_same_path(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **TINY_TRAINING), data, tmp_path / "teacher", progress=False)
    teacher_weights = tmp_path / "teacher" / "best.safetensors"
    student = TrainConfig(epochs=2, teacher=str(tmp_path / "teacher"), **TINY_TRAINING)
    train(student, data, tmp_path / "student", progress=False, max_minutes=0)  # stops after epoch 1
    card = json.loads((tmp_path / "student" / "model.json").read_text())
    assert card["teacher_sha256"] == {str(tmp_path / "teacher"): file_sha256(teacher_weights)}
    train(TrainConfig(epochs=1, seed=5, **TINY_TRAINING), data, tmp_path / "other", progress=False)
    teacher_weights.write_bytes((tmp_path / "other" / "best.safetensors").read_bytes())  # other weights, same path
    with pytest.raises(ValueError, match="other weights"):
        train(student, data, tmp_path / "student", resume=True, progress=False)


def test_a_checkpoint_from_before_a_new_option_resumes(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    config = TrainConfig(epochs=2, **TINY_TRAINING)
    train(config, data, tmp_path / "run", progress=False, max_minutes=0)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del state["config"]["teacher"]  # as written by a version without distillation
    torch.save(state, tmp_path / "run" / "last.pt")
    assert train(config, data, tmp_path / "run", progress=False)["finished"]


def test_resume_refuses_a_different_config(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **TINY_TRAINING), data, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(TrainConfig(epochs=2, lr=0.01, **TINY_TRAINING), data, tmp_path / "run", progress=False)


@pytest.mark.parametrize("mode", ["none", "light", "strong"])
def test_augmentation_keeps_shape_and_is_seeded(mode):
    images = torch.rand(8, 1, 48, 48)
    a = augment_batch(images, mode, torch.Generator().manual_seed(1))
    b = augment_batch(images, mode, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and torch.equal(a, b)
    if mode != "none":
        assert not torch.equal(a, images)


def test_degrading_spoils_the_share_asked_for_as_8_bit_pictures_seeded():
    from ferlab.data import PIXEL_MEAN, PIXEL_STD

    faces = torch.randint(0, 256, (400, 1, 48, 48)).float()
    images = ((faces / 255 - PIXEL_MEAN) / PIXEL_STD).contiguous(memory_format=torch.channels_last)
    assert degrade_batch(images, 0.0, torch.Generator()) is images
    a = degrade_batch(images, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, degrade_batch(images, 0.5, torch.Generator().manual_seed(1)))
    assert a.shape == images.shape and a.is_contiguous(memory_format=torch.channels_last)
    kept = (a == images).flatten(1).all(1).float().mean()
    assert 0.4 < kept < 0.6  # the rest are spoiled, each face in some way
    levels = (a * PIXEL_STD + PIXEL_MEAN) * 255
    assert levels.min() >= -1e-3 and levels.max() <= 255 + 1e-3
    assert torch.allclose(levels, levels.round(), atol=1e-3)  # 8-bit grey levels, as a camera gives


def test_init_starts_from_trained_weights_and_refuses_another_architecture(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **TINY_TRAINING), data, tmp_path / "start", progress=False)
    start = load_file(str(tmp_path / "start" / "best.safetensors"))
    # A learning rate of almost nothing: the fine-tuned weights stay where they started.
    tuned = TrainConfig(epochs=1, lr=1e-12, augment="none", seed=3, init=str(tmp_path / "start"), **TINY_TRAINING)
    train(tuned, data, tmp_path / "tuned", progress=False)
    after = load_file(str(tmp_path / "tuned" / "best.safetensors"))
    weights = [name for name in start if name.endswith("weight")]
    assert all(torch.allclose(start[name], after[name], atol=1e-6) for name in weights)
    card = json.loads((tmp_path / "tuned" / "model.json").read_text())
    assert card["init_sha256"] == file_sha256(tmp_path / "start" / "best.safetensors")
    train(TrainConfig(epochs=1, lr=1e-12, augment="none", seed=3, **TINY_TRAINING), data, tmp_path / "fresh", progress=False)
    fresh = load_file(str(tmp_path / "fresh" / "best.safetensors"))
    assert not all(torch.allclose(start[name], fresh[name], atol=1e-6) for name in weights)
    other = {**TINY_TRAINING, "model_options": {**TINY_TRAINING["model_options"], "hidden": 32}}
    with pytest.raises(ValueError, match="give the --model and --model-option flags"):
        train(TrainConfig(epochs=1, init=str(tmp_path / "start"), **other), data, tmp_path / "x", progress=False)
    # An option that leaves every weight's shape alone may change from the start to the fine-tune.
    less_dropout = {**TINY_TRAINING, "model_options": {**TINY_TRAINING["model_options"], "dropout": 0.1}}
    train(TrainConfig(epochs=1, init=str(tmp_path / "start"), **less_dropout), data, tmp_path / "y", progress=False)
    assert json.loads((tmp_path / "y" / "model.json").read_text())["model_options"]["dropout"] == 0.1


def test_a_resumed_fine_tune_keeps_its_start_fingerprint_without_the_start_file(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    train(TrainConfig(epochs=1, **TINY_TRAINING), data, tmp_path / "start", progress=False)
    digest = file_sha256(tmp_path / "start" / "best.safetensors")
    tuned = TrainConfig(epochs=2, init=str(tmp_path / "start"), **TINY_TRAINING)
    train(tuned, data, tmp_path / "tuned", progress=False, max_minutes=0)  # stops after epoch 1
    (tmp_path / "start" / "best.safetensors").unlink()  # the checkpoint holds the weights now
    train(tuned, data, tmp_path / "tuned", resume=True, progress=False)
    assert len(json.loads((tmp_path / "tuned" / "history.json").read_text())) == 2
    assert json.loads((tmp_path / "tuned" / "model.json").read_text())["init_sha256"] == digest
