import numpy as np
import pytest

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS


def test_predict_proba_shapes_and_sums(tiny_model):
    model = load_model(tiny_model)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = model.predict_proba(faces)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
    assert model.predict(faces).shape == (5,)
    assert model.predict_proba(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    assert model.labels == EMOTIONS


def test_bad_faces_say_what_to_do(tiny_model):
    model = load_model(tiny_model)
    with pytest.raises(ValueError, match=r"\(N, 48, 48\)"):
        model.predict_proba(np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model.predict_proba(np.zeros((2, 48, 48), np.float32))


def test_onnx_export_agrees_with_pytorch(tiny_model, tmp_path):
    torch_model = load_model(tiny_model)
    path = torch_model.export_onnx(tmp_path / "model.onnx")
    onnx_model = load_model(path)
    faces = np.random.default_rng(1).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    a, b = torch_model.predict_proba(faces), onnx_model.predict_proba(faces)
    # PyTorch runs in bf16 where the CPU supports it; ONNX Runtime in fp32.
    assert np.abs(a - b).max() < 0.02
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.95
    assert onnx_model.card == torch_model.card


def test_a_standardising_network_exports_and_sees_a_darker_face_alike(tmp_path):
    import torch

    from ferlab.models import create_model
    from ferlab.train import TrainConfig, save_weights

    config = TrainConfig(model="fast_cnn", model_options={"widths": [8, 16], "hidden": 16, "standardise_faces": True})
    torch.manual_seed(0)
    save_weights(create_model(config.model, **config.model_options), config, tmp_path, {"epoch": 0, "val_accuracy": 0.0})
    torch_model = load_model(tmp_path)
    onnx_model = load_model(torch_model.export_onnx(tmp_path / "model.onnx"))
    faces = np.random.default_rng(2).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    darker = (faces // 2).astype(np.uint8)  # half the light, grey levels rounded down as a camera's
    for model in (torch_model, onnx_model):
        assert np.abs(model.predict_proba(faces) - model.predict_proba(darker)).max() < 0.02
    assert np.abs(torch_model.predict_proba(faces) - onnx_model.predict_proba(faces)).max() < 0.02


def test_int8_onnx_export_is_smaller_and_agrees_with_fp32(tiny_model, tmp_path):
    import onnx

    from .conftest import synthetic_faces

    model = load_model(tiny_model)
    fp32 = model.export_onnx(tmp_path / "fp32.onnx")
    assert "MaxPool" in {node.op_type for node in onnx.load(fp32).graph.node}
    calibration, _ = synthetic_faces(128, seed=4)
    int8 = model.export_onnx(tmp_path / "int8.onnx", calibration_faces=calibration)
    assert any(tensor.data_type == onnx.TensorProto.INT8 for tensor in onnx.load(int8).graph.initializer)
    assert int8.stat().st_size < fp32.stat().st_size * 0.7  # 0.26 for the bundled model; graph overhead here
    assert not list(tmp_path.glob("*.tmp*"))  # written through temporary files, none left behind
    quantized = load_model(int8)
    assert quantized.card["onnx"] == {"precision": "int8", "calibration_faces": 128}
    faces, _ = synthetic_faces(64, seed=5)
    a, b = load_model(fp32).predict_proba(faces), quantized.predict_proba(faces)
    np.testing.assert_allclose(b.sum(1), 1, atol=1e-3)
    assert np.abs(a - b).max() < 0.03


def test_tta_averages_the_mirror_and_shifts_on_both_backends(tiny_model, tmp_path):
    faces = np.random.default_rng(2).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    plain, flip = load_model(tiny_model), load_model(tiny_model, tta="flip")
    plain.network_bf16 = flip.network_bf16 = None  # fp32 passes only, for an exact comparison
    # The views' logits are averaged (the soft-max of the mean log-probability), as in
    # ferlab.evaluate.predict_logits, which measures the TTA accuracy in a model card.
    mean_log = (np.log(plain.predict_proba(faces)) + np.log(plain.predict_proba(faces[:, :, ::-1].copy()))) / 2
    expected = np.exp(mean_log) / np.exp(mean_log).sum(1, keepdims=True)
    np.testing.assert_allclose(flip.predict_proba(faces), expected, atol=1e-5)
    from scipy.special import softmax

    from ferlab.evaluate import predict_logits
    from ferlab.models import load_trained

    network = load_trained(tiny_model)[0]
    for tta, classifier in (("flip", flip), ("shift", load_model(tiny_model, tta="shift"))):
        classifier.network_bf16 = None
        card_way = softmax(predict_logits(network, faces, precision="fp32", tta=tta), axis=1)
        np.testing.assert_allclose(classifier.predict_proba(faces), card_way, atol=1e-4)
    shift = load_model(tiny_model, tta="shift").predict_proba(faces)
    np.testing.assert_allclose(shift.sum(1), 1, atol=1e-3)
    onnx_path = plain.export_onnx(tmp_path / "model.onnx")
    onnx_shift = load_model(onnx_path, tta="shift").predict_proba(faces)
    assert np.abs(onnx_shift - shift).max() < 0.02  # PyTorch in bf16 from 2 rows, ONNX Runtime in fp32
    many = np.random.default_rng(3).integers(0, 256, (70, 48, 48), dtype=np.uint8)  # several passes
    many[:3] = faces
    np.testing.assert_allclose(load_model(onnx_path, tta="shift").predict_proba(many)[:3], onnx_shift, atol=1e-5)
    # One call's TTA instead of the model's own, alone and in an ensemble.
    onnx_plain = load_model(onnx_path)
    np.testing.assert_allclose(onnx_plain.predict_proba(faces, tta="shift"), onnx_shift, atol=1e-6)
    assert onnx_plain.tta == "none"
    pair = load_model(f"{onnx_path}+{onnx_path}")
    np.testing.assert_allclose(pair.predict_proba(faces, tta="shift"), onnx_shift, atol=1e-6)
    with pytest.raises(ValueError, match="tta must be one of"):
        load_model(tiny_model, tta="ten-crop")
    with pytest.raises(ValueError, match="tta must be one of"):
        onnx_plain.predict_proba(faces, tta="ten-crop")


def test_the_cards_temperature_scales_the_soft_max_in_pytorch_and_onnx(tiny_model, tmp_path):
    import json
    import shutil

    faces = np.random.default_rng(6).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    plain = load_model(tiny_model)
    warm = tmp_path / "warm.safetensors"
    shutil.copyfile(tiny_model / "best.safetensors", warm)
    warm.with_suffix(".json").write_text(json.dumps({**plain.card, "temperature": 2.0}))
    scaled = load_model(warm)
    plain.network_bf16 = scaled.network_bf16 = None  # fp32 passes only, for an exact comparison
    p, q = plain.predict_proba(faces), scaled.predict_proba(faces)
    expected = np.sqrt(p) / np.sqrt(p).sum(1, keepdims=True)  # soft-max(logits / 2)
    np.testing.assert_allclose(q, expected, atol=1e-5)
    assert (q.argmax(1) == p.argmax(1)).all()
    exported = load_model(scaled.export_onnx(tmp_path / "warm.onnx"))  # the division is in the graph
    np.testing.assert_allclose(exported.predict_proba(faces), q, atol=1e-4)
    # Evaluation undoes it: the network's own logits, up to a constant per face.
    from ferlab.classifier import onnx_logits
    from ferlab.evaluate import predict_logits
    from ferlab.models import load_trained

    raw = predict_logits(load_trained(tiny_model)[0], faces, precision="fp32")
    recovered = onnx_logits(tmp_path / "warm.onnx")(faces, "none")
    np.testing.assert_allclose(recovered - recovered.mean(1, keepdims=True), raw - raw.mean(1, keepdims=True), atol=1e-3)
    at_card = onnx_logits(tmp_path / "warm.onnx", at_card_temperature=True)(faces, "none")  # what ensembles average
    np.testing.assert_allclose(2 * at_card, recovered, rtol=1e-6)
    warm.with_suffix(".json").write_text(json.dumps({**plain.card, "temperature": 0}))
    with pytest.raises(ValueError, match="temperature must be positive"):
        load_model(warm, backend="torch")


def test_weights_that_do_not_fit_are_refused(tiny_model, tmp_path):
    import json

    card = json.loads((tiny_model / "model.json").read_text())
    card["model_options"] = {}
    (tiny_model / "model.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not fit"):
        load_model(tiny_model)


def test_garbage_weights_are_refused(tiny_model):
    (tiny_model / "best.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_model(tiny_model)


def test_a_pickle_offered_as_weights_is_refused_not_loaded(tiny_model, tmp_path):
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"weights": Payload()}, tiny_model / "best.safetensors")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_model(tiny_model)
    assert not marker.exists()


def test_the_backend_can_be_chosen_and_says_what_it_needs(tiny_model, tmp_path):
    from ferlab.classifier import OnnxExpressionClassifier
    from ferlab.torch_classifier import TorchExpressionClassifier

    weights = tiny_model / "best.safetensors"
    with pytest.raises(FileNotFoundError, match="ferlab export --onnx"):
        load_model(weights, backend="onnx")  # no ONNX export beside it yet
    torch_model = load_model(weights, backend="torch")
    torch_model.export_onnx(weights.with_suffix(".onnx"))
    assert isinstance(torch_model, TorchExpressionClassifier)
    assert isinstance(load_model(weights), OnnxExpressionClassifier)  # the ONNX twin first, as for bundled models
    assert isinstance(load_model(weights, backend="onnx"), OnnxExpressionClassifier)
    with pytest.raises(ValueError, match="runs on ONNX Runtime"):
        load_model(weights.with_suffix(".onnx"), backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        load_model(weights, backend="tensorflow")


def test_without_pytorch_the_bundled_models_run_on_onnx_runtime(tiny_model, tmp_path):
    from ferlab.classifier import bundled_path

    from .conftest import run_without_training_tools

    faces = np.random.default_rng(7).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", faces)
    out = run_without_training_tools(f"""
import json
import numpy as np
import ferlab
from ferlab.classifier import OnnxExpressionClassifier
faces = np.load("faces.npy")
for name in ("default", "fast", "fast-int8", "robust"):
    model = ferlab.load_model(name, tta="flip")
    assert isinstance(model, OnnxExpressionClassifier), name
    np.save(name + ".npy", model.predict_proba(faces))
np.save("default+fast.npy", ferlab.load_model("default+fast", tta="flip").predict_proba(faces))
try:
    ferlab.load_model({str(tiny_model)!r})
except ImportError as error:
    print(error)
assert "torch" not in sys.modules or sys.modules["torch"] is None
""", tmp_path)
    assert "PyTorch is not installed" in out and "ferlab[train]" in out  # a run folder needs PyTorch
    for name in ("default", "fast", "robust"):  # each .onnx twin gives its safetensors' probabilities
        assert bundled_path(name).with_suffix(".onnx").exists()
        reference = load_model(name, tta="flip", backend="torch")
        reference.network_bf16 = None  # fp32, as ONNX Runtime runs it
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), reference.predict_proba(faces), atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "fast-int8.npy"), load_model("fast-int8", tta="flip").predict_proba(faces))
    mean = (np.load(tmp_path / "default.npy") + np.load(tmp_path / "fast.npy")) / 2
    np.testing.assert_allclose(np.load(tmp_path / "default+fast.npy"), mean, atol=1e-6)


def test_models_joined_by_plus_run_as_one_ensemble(tiny_model, tmp_path):
    from ferlab.classifier import EnsembleClassifier

    faces = np.random.default_rng(8).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    exported = load_model(tiny_model, backend="torch").export_onnx(tmp_path / "tiny.onnx")
    ensemble = load_model(f"{tiny_model}+{exported}+fast", tta="flip")
    assert isinstance(ensemble, EnsembleClassifier) and len(ensemble.members) == 3 and ensemble.tta == "flip"
    assert ensemble.card["members"][-1]["name"] == "fast" and ensemble.card["name"].endswith("+fast")
    assert ensemble.card["labels"] == list(EMOTIONS)
    expected = sum(member.predict_proba(faces) for member in ensemble.members) / 3
    probabilities = ensemble.predict_proba(faces)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    assert (ensemble.predict(faces) == probabilities.argmax(1)).all()
    ensemble.batch_size, ensemble.tta = 5, "shift"  # set on the ensemble, used by every member
    assert [(m.batch_size, m.tta) for m in ensemble.members] == [(5, "shift")] * 3
    odd = tmp_path / "a+b"  # a path that exists is one model, "+" or not
    odd.mkdir()
    for name in ("best.safetensors", "model.json"):
        (odd / name).write_bytes((tiny_model / name).read_bytes())
    assert not isinstance(load_model(odd), EnsembleClassifier)
    with pytest.raises(ValueError, match="joined by"):
        load_model("default+")
    with pytest.raises(FileNotFoundError, match="no such model"):
        load_model("default+nonexistent")
    with pytest.raises(ValueError, match="faces must be shaped"):
        ensemble.predict_proba(np.zeros((2, 32, 32), np.uint8))
