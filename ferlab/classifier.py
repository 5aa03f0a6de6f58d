"""Trained expression classifiers behind one small API, on PyTorch or ONNX Runtime.

    model = ferlab.load_model()              # the bundled default model
    probs = model.predict_proba(faces)       # faces: uint8 (N, 48, 48) -> (N, 7) float32
    ferlab.load_model(tta="shift")           # averages 10 views per face: slower, more accurate

Faces are FER2013-framed grayscale crops; the probabilities follow FER2013's label order
(`ferlab.EMOTIONS`). Normalisation comes from the model's card, so weights and
preprocessing cannot drift apart.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

from .data import EMOTIONS, IMAGE_SIZE
from .evaluate import TTA_VIEWS, bf16_is_native, check_tta, evaluate_predictions, tta_views
from .models import load_trained

BUNDLED = "default"
BUNDLED_SUFFIXES = (".safetensors", ".onnx")


class WithPreprocessing(nn.Module):
    """Raw 0..255 pixels (N, 1, 48, 48) float in, probabilities out: the exported graph.

    Pixels are normalised in fp32, then cast to the network's own dtype (fp32 or bf16). The
    soft-max runs at the card's temperature (fitted on PublicTest by `ferlab package-model`),
    which brings the probabilities closer to how often their labels are right."""

    def __init__(self, model: nn.Module, mean: float, std: float, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"the card's temperature must be positive, not {temperature}")
        self.model = model
        self.scale = 1.0 / (255.0 * std)
        self.shift = mean / std
        self.temperature = temperature

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        normalised = pixels * self.scale - self.shift
        dtype = next(self.model.parameters()).dtype
        if normalised.dtype != dtype:  # checked here so that the exported fp32 graph has no cast
            normalised = normalised.to(dtype)
        logits = self.model(normalised).float()
        if self.temperature != 1.0:  # decided when the graph is built: a model without one exports no division
            logits = logits / self.temperature
        return torch.softmax(logits, dim=1)


def average_views(probabilities: np.ndarray) -> np.ndarray:
    """One face's probabilities from those of its TTA views (V, N, 7): the soft-max of the
    views' mean log-probability, which equals the soft-max of their mean logits, the average
    `ferlab.evaluate.predict_logits` takes and so every TTA figure in a model card."""
    if len(probabilities) == 1:
        return probabilities[0]
    mean_log = np.log(np.maximum(probabilities, np.finfo(np.float32).tiny)).mean(0)
    exp = np.exp(mean_log - mean_log.max(1, keepdims=True))
    return (exp / exp.sum(1, keepdims=True)).astype(np.float32)


def _check_faces(faces) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3 or faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"faces must be shaped (N, 48, 48), got {faces.shape}; crop and resize them first "
                         "(ferlab.analyze does this for whole photos)")
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 pixels 0..255, got {faces.dtype}")
    return faces


# Measured on the 2-core CPU (benchmarks/classifier_throughput.py): batches of 64 keep a
# batch's activations in cache and run about twice as fast per face as batches of 512.
# Passes of 2 faces or more run in bf16 (default network: 2.0 vs 2.8 ms for 2 faces, 2.9 vs
# 6.1 ms for 8; benchmarks/bf16_threshold.py), a single face in fp32 (exact, and as quick).
# The bf16 copy of the network holds its weights in bf16 once: autocast re-cast every weight
# on every call, which cost about 40% of the throughput and made bf16 pay only from about 8
# faces.
DEFAULT_BATCH_SIZE = 64
BF16_MIN_FACES = 2


class _LeafModuleTracer(fx.Tracer):
    """Traces down to modules without children and keeps those whole, so a layer that picks
    its code at run time (fast_cnn's pooling: grad mode, ONNX export) still does so."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return not any(module.children())


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of an evaluation-mode model with each batch norm folded into the convolution
    before it: the same outputs with one pass over the activations fewer per layer."""
    graph = _LeafModuleTracer().trace(model)
    return fuse(fx.GraphModule(model, graph), no_trace=True)


class ExpressionClassifier:
    """A FER classifier: ``predict_proba`` and ``predict`` on uint8 (N, 48, 48) faces.

    ``tta`` (test-time augmentation, see `ferlab.evaluate.tta_views`): "flip" averages the
    logits of each face and its mirror image, "shift" also of 2-pixel shifts (10 views).
    """

    labels = EMOTIONS

    def __init__(self, model: nn.Module, card: dict, batch_size: int = DEFAULT_BATCH_SIZE, tta: str = "none"):
        self.card = card
        self.batch_size = batch_size
        self.tta = check_tta(tta)
        normalisation = card["input"]
        model = fold_batch_norms(model.eval())
        self.network = WithPreprocessing(model, normalisation["mean"], normalisation["std"],
                                         card.get("temperature", 1.0)).eval()
        self.network = self.network.to(memory_format=torch.channels_last)
        self.network_bf16 = copy.deepcopy(self.network).to(torch.bfloat16) if bf16_is_native() else None

    @torch.inference_mode()
    def predict_proba(self, faces) -> np.ndarray:
        faces = _check_faces(faces)
        out = []
        # All views of a face go through the network in one pass (one face's 10 views cost
        # about what one view does), with passes kept near batch_size rows.
        faces_per_pass = max(1, self.batch_size // TTA_VIEWS[self.tta])
        for start in range(0, len(faces), faces_per_pass):
            batch = faces[start : start + faces_per_pass]
            pixels = np.concatenate(tta_views(batch, self.tta), dtype=np.float32)[:, None]  # one copy, not two
            out.append(average_views(self._probabilities(pixels).reshape(-1, len(batch), 7)))
        return np.concatenate(out) if out else np.zeros((0, 7), np.float32)

    def _probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities (n, 7) for raw 0..255 float32 pixels (n, 1, 48, 48)."""
        use_bf16 = self.network_bf16 is not None and len(pixels) >= BF16_MIN_FACES
        network = self.network_bf16 if use_bf16 else self.network
        return network(torch.from_numpy(pixels).contiguous(memory_format=torch.channels_last)).numpy()

    def predict(self, faces) -> np.ndarray:
        return self.predict_proba(faces).argmax(1)

    def faces_per_second(self, faces: np.ndarray, repeats: int = 3) -> float:
        """Throughput of `predict_proba` on ``faces``: the best of ``repeats`` timed passes,
        after a warm-up batch (kernel selection, allocations)."""
        self.predict_proba(faces[: self.batch_size])
        best = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            self.predict_proba(faces)
            best = max(best, len(faces) / (time.perf_counter() - start))
        return best

    def export_onnx(self, path: str | Path, calibration_faces: np.ndarray | None = None) -> Path:
        """Write the model (preprocessing and soft-max included) as ONNX, with its card beside it.

        With ``calibration_faces`` (uint8 (N, 48, 48) training faces; a thousand is plenty)
        weights and activations are stored as int8, their ranges measured on those faces
        (ONNX Runtime's static quantization): a file a quarter of the size that ONNX Runtime
        runs faster on CPUs with int8 instructions. The card records this in ``onnx``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        card = dict(self.card)
        if calibration_faces is None:
            self._export_fp32(path)
        else:
            faces = _check_faces(calibration_faces)
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = Path(tmp) / "fp32.onnx"
                self._export_fp32(fp32)
                _quantize_int8(fp32, path, faces)
            card["onnx"] = {"precision": "int8", "calibration_faces": len(faces)}
        path.with_suffix(".json").write_text(json.dumps(card, indent=2))
        return path

    def _export_fp32(self, path: Path) -> None:
        example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
        torch.onnx.export(
            self.network, (example,), str(path), input_names=["pixels"], output_names=["probabilities"],
            dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}}, dynamo=False,
        )


def _quantize_int8(source: Path, target: Path, faces: np.ndarray, batch_size: int = 64) -> None:
    """Static int8 quantization of an fp32 ONNX classifier, activation ranges from ``faces``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class FaceBatches(CalibrationDataReader):
        def __init__(self):
            self.batches = (faces[i : i + batch_size, None].astype(np.float32) for i in range(0, len(faces), batch_size))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"pixels": batch}

    prepared = source.with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared))  # shape inference and graph clean-up first, as ORT advises
    # QDQ format: ORT's other format (QOperator) mis-quantized this graph in onnxruntime 1.32
    # (1.6% accuracy on PublicTest), while QDQ kept the fp32 model's accuracy within 0.6 points.
    # Only the layers with weights (and pooling between them) go int8: the soft-max stays fp32,
    # so probabilities still sum to 1 rather than moving in steps of 1/255.
    quantize_static(
        str(prepared), str(target), FaceBatches(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "Gemm", "MaxPool"],
    )


class OnnxExpressionClassifier(ExpressionClassifier):
    """The same API on ONNX Runtime (a model written by `ExpressionClassifier.export_onnx`)."""

    def __init__(self, path: str | Path, card: dict, batch_size: int = DEFAULT_BATCH_SIZE, tta: str = "none"):
        import onnxruntime as ort

        self.card = card
        self.batch_size = batch_size
        self.tta = check_tta(tta)
        options = ort.SessionOptions()
        # An explicit thread count: left at 0, ONNX Runtime pins its threads to cores, and
        # on the 2-core EPYC runs of benchmarks/classifier_throughput.py then flipped
        # between about 4,600 and 5,700 faces/s (int8 `fast`); unpinned, 6,020 three times.
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": pixels})[0]


def bundled_models() -> list[str]:
    """Names of the models shipped inside ferlab, for `load_model` (see their cards in ferlab/pretrained)."""
    folder = resources.files("ferlab") / "pretrained"
    return sorted({item.name.rsplit(".", 1)[0] for item in folder.iterdir() if item.name.endswith(BUNDLED_SUFFIXES)})


def bundled_path(name: str = BUNDLED) -> Path:
    """The weights of a bundled model: PyTorch safetensors, or ONNX for one exported as int8."""
    folder = Path(str(resources.files("ferlab") / "pretrained"))
    candidates = [folder / f"{name}{suffix}" for suffix in BUNDLED_SUFFIXES]
    return next((path for path in candidates if path.exists()), candidates[0])


def resolve_model(name_or_path: str | Path | None = None) -> Path:
    """The file or run folder behind a model argument: an existing path wins over a bundled
    model's name; no argument is the bundled default."""
    path = Path(name_or_path if name_or_path is not None else BUNDLED)
    if not path.exists() and str(path) in bundled_models():
        path = bundled_path(str(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model; pass a bundled model's name ({', '.join(bundled_models())}), "
                                "a run folder, a .safetensors or an .onnx file")
    return path


def load_model(name_or_path: str | Path | None = None, tta: str = "none") -> ExpressionClassifier:
    """The bundled default model (no argument), another bundled model by name ("fast", "fast-int8"), or
    one trained by ferlab: a run folder, a ``.safetensors`` file with its ``.json`` card
    beside it, or an exported ``.onnx``. A path that exists wins over a bundled name.
    ``tta`` is "none", "flip" or "shift" (see `ExpressionClassifier`)."""
    path = resolve_model(name_or_path)
    if path.suffix == ".onnx":
        return OnnxExpressionClassifier(path, card_beside(path), tta=tta)
    model, card = load_trained(path)
    return ExpressionClassifier(model, card, tta=tta)


def evaluate_exported(path: str | Path, data) -> dict:
    """`ferlab.evaluate.evaluate_trained`'s test-split metrics for an exported ``.onnx`` model
    (``data``: a loaded FER2013), run through ONNX Runtime as users run it."""

    classifiers = {tta: load_model(path, tta=tta) for tta in TTA_VIEWS}  # one ONNX Runtime session each

    def log_probabilities(faces: np.ndarray, tta: str) -> np.ndarray:
        return np.log(np.maximum(classifiers[tta].predict_proba(faces), 1e-12))

    return evaluate_predictions(log_probabilities, data)


def card_beside(path: Path) -> dict:
    """The model card written beside an exported model or a .safetensors file."""
    card_path = path.with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: missing model card beside {path.name}")
    return json.loads(card_path.read_text())
