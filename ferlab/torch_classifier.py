"""The PyTorch backend of `ferlab.classifier`: a trained network with its preprocessing,
batch norms folded, in bf16 where the CPU runs it natively; and export to ONNX.

`ferlab.load_model` picks it for run folders and ``.safetensors`` files when PyTorch is
installed (``pip install "ferlab[train]"``); without PyTorch the bundled models run on
ONNX Runtime from their ``.onnx`` twins.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse

from .atomic import atomic_write, atomic_write_text
from .classifier import DEFAULT_BATCH_SIZE, ExpressionClassifier, check_faces
from .data import IMAGE_SIZE
from .evaluate import bf16_is_native

# Passes of 2 faces or more run in bf16 (default network: 2.0 vs 2.8 ms for 2 faces, 2.9 vs
# 6.1 ms for 8; benchmarks/bf16_threshold.py), a single face in fp32 (exact, and as quick).
# The bf16 copy of the network holds its weights in bf16 once: autocast re-cast every weight
# on every call, which cost about 40% of the throughput and made bf16 pay only from about 8
# faces.
BF16_MIN_FACES = 2


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


class TorchExpressionClassifier(ExpressionClassifier):
    """`ExpressionClassifier` on a PyTorch network (``model``) described by its ``card``."""

    def __init__(self, model: nn.Module, card: dict, batch_size: int = DEFAULT_BATCH_SIZE, tta: str = "none"):
        super().__init__(card, batch_size, tta)
        normalisation = card["input"]
        model = fold_batch_norms(model.eval())
        self.network = WithPreprocessing(model, normalisation["mean"], normalisation["std"],
                                         card.get("temperature", 1.0)).eval()
        self.network = self.network.to(memory_format=torch.channels_last)
        self.network_bf16 = copy.deepcopy(self.network).to(torch.bfloat16) if bf16_is_native() else None

    @torch.inference_mode()
    def _probabilities(self, pixels: np.ndarray) -> np.ndarray:
        use_bf16 = self.network_bf16 is not None and len(pixels) >= BF16_MIN_FACES
        network = self.network_bf16 if use_bf16 else self.network
        return network(torch.from_numpy(pixels).contiguous(memory_format=torch.channels_last)).numpy()

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
            with atomic_write(path) as tmp:
                self._export_fp32(tmp)
        else:
            faces = check_faces(calibration_faces)
            with tempfile.TemporaryDirectory() as scratch, atomic_write(path) as tmp:
                fp32 = Path(scratch) / "fp32.onnx"
                self._export_fp32(fp32)
                _quantize_int8(fp32, tmp, faces)
            card["onnx"] = {"precision": "int8", "calibration_faces": len(faces)}
        atomic_write_text(path.with_suffix(".json"), json.dumps(card, indent=2))
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
