import pytest
import torch

from ferlab.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_and_backward(name):
    model = create_model(name)
    x = torch.randn(4, 1, 48, 48)
    logits = model(x)
    assert logits.shape == (4, 7)
    logits.sum().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), param_name


def test_paper_cnn_layout_and_parameter_count():
    model = create_model("paper_cnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32] * 3 + [64] * 3 + [128] * 3
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 3
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3
    # convs + 3 batch norms (2 * (32 + 64 + 128)) + dense 4608->64 + 64->7
    conv_params = sum(c.weight.numel() + c.bias.numel() for c in convs)
    pairs = [(1, 32), (32, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128)]
    assert conv_params == sum(i * o * 9 + o for i, o in pairs)
    assert sum(p.numel() for p in model.parameters()) == conv_params + 448 + (4608 * 64 + 64) + (64 * 7 + 7)


def test_fast_cnn_sees_full_resolution_with_one_thin_convolution_only():
    model = create_model("fast_cnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 32, 64, 64, 128, 128]
    features = model.features(torch.zeros(2, 1, 48, 48))
    assert features.shape == (2, 128, 3, 3)
    assert sum(p.numel() for p in model.parameters()) < 700_000


def test_fast_cnn_upsample_to_gives_every_stage_more_pixels():
    model = create_model("fast_cnn", upsample_to=64)
    assert model.features(torch.nn.functional.interpolate(torch.zeros(2, 1, 48, 48), size=64)).shape == (2, 128, 4, 4)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)  # still takes FER2013's 48x48 faces
    with pytest.raises(ValueError, match="below the input"):
        create_model("fast_cnn", upsample_to=32)


def test_fast_cnn_squeeze_excite_gates_each_stage_without_renaming_the_plain_model():
    from ferlab.models.fast_cnn import SqueezeExcite

    plain, gated = create_model("fast_cnn"), create_model("fast_cnn", se_reduction=8)
    gates = [m for m in gated.modules() if isinstance(m, SqueezeExcite)]
    assert len(gates) == 3 and not any(isinstance(m, SqueezeExcite) for m in plain.modules())
    assert gated(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    x = torch.randn(2, 32, 6, 6)
    scaled = gates[0](x) / x
    assert ((scaled > 0) & (scaled < 1)).all()  # one positive factor below 1 per channel and face
    assert torch.allclose(scaled, scaled[:, :, :1, :1].expand_as(scaled), atol=1e-5)


def test_fast_pooling_matches_max_pool_and_state_dicts_keep_their_names():
    from ferlab.models.fast_cnn import MaxPool2x2

    x = torch.randn(3, 5, 12, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(x), torch.nn.functional.max_pool2d(x, 2))
    assert torch.equal(MaxPool2x2()(x.requires_grad_()), torch.nn.functional.max_pool2d(x, 2))
    keys = create_model("fast_cnn").state_dict().keys()
    assert "features.0.weight" in keys and "features.21.weight" in keys  # the bundled weights' names


def test_standardise_faces_makes_brightness_and_contrast_free_and_adds_no_weights():
    torch.manual_seed(0)
    plain, standardising = create_model("fast_cnn"), create_model("fast_cnn", standardise_faces=True)
    assert plain.state_dict().keys() == standardising.state_dict().keys()  # a start for one fits the other
    standardising.load_state_dict(plain.state_dict())
    faces = torch.randn(4, 1, 48, 48)
    dimmer_and_flatter = faces * 0.5 - 1.5  # (the variance floor is far below this face's)
    with torch.no_grad():
        seen = (standardising.eval()(faces) - standardising(dimmer_and_flatter)).abs().max()
        unseen = (plain.eval()(faces) - plain(dimmer_and_flatter)).abs().max()
        blank = standardising(torch.full((1, 1, 48, 48), 0.7))
    assert seen < unseen / 20
    assert torch.isfinite(blank).all()  # a face without any spread stays finite


def test_rep_branches_train_three_paths_and_fold_into_the_plain_network_exactly():
    from ferlab.models.fast_cnn import RepConvBN

    torch.manual_seed(0)
    model = create_model("fast_cnn", rep_branches=True, convs_per_stage=3)
    blocks = [m for m in model.modules() if isinstance(m, RepConvBN)]
    assert len(blocks) == 10 and sum(b.norm_identity is not None for b in blocks) == 6
    model.train()
    for _ in range(3):  # batch statistics and affine parameters away from their initial values
        model(torch.randn(16, 1, 48, 48) * 2 + 1)
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(norm.weight, 0.5, 1.5)
        torch.nn.init.uniform_(norm.bias, -0.5, 0.5)
    x = torch.randn(8, 1, 48, 48)
    with torch.no_grad():
        branched = model.eval()(x)
        model.fold_branches()
        folded = model(x)
    assert not any(isinstance(m, RepConvBN) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(c.kernel_size == (3, 3) for c in convs)
    assert torch.allclose(folded, branched, atol=1e-4)
    plain = create_model("fast_cnn", convs_per_stage=3)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in plain.parameters())


def test_resnet_stem_pool_halves_every_stage_and_keeps_the_weights():
    full, pooled = create_model("resnet_fer_small"), create_model("resnet_fer_fast")
    assert set(full.state_dict()) == set(pooled.state_dict())  # pooling has no weights
    x = torch.randn(2, 1, 48, 48)
    assert full.stages(full.stem(x)).shape == (2, 256, 6, 6)
    assert pooled.stages(pooled.stem(x)).shape == (2, 256, 3, 3)
    assert pooled(x).shape == (2, 7)


def test_ablations_drop_what_they_say():
    no_bn = create_model("paper_cnn_no_bn")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())
    no_dropout = create_model("paper_cnn_no_dropout")
    assert all(m.p == 0 for m in no_dropout.modules() if isinstance(m, torch.nn.Dropout))
    assert create_model("paper_cnn", batch_norm=False).config.batch_norm is False


def test_unknown_names_and_options_say_what_exists():
    with pytest.raises(ValueError, match="available: .*paper_cnn"):
        create_model("resnet9000")
    with pytest.raises(ValueError, match="unknown paper_cnn option"):
        create_model("paper_cnn", width=3)


def test_a_bundled_model_is_a_start_or_teacher_by_its_name(tmp_path, monkeypatch):
    from ferlab.models import load_trained, trained_card, weights_file

    assert weights_file("default").name == "default.safetensors" and weights_file("default").exists()
    assert trained_card("robust")["model_options"]["standardise_faces"] is True
    assert load_trained("fast")[1]["model"] == "fast_cnn"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()  # a run folder of that name here wins over the bundled model
    assert weights_file("default") == tmp_path.joinpath("default", "best.safetensors").relative_to(tmp_path)
    with pytest.raises(FileNotFoundError, match="bundled model with PyTorch weights"):
        trained_card("fast-int8")  # shipped as ONNX only: nothing to train from
