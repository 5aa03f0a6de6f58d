"""Trained expression classifiers behind one small API, on PyTorch or ONNX Runtime.

    model = ferlab.load_model()              # the bundled default model
    probs = model.predict_proba(faces)       # faces: uint8 (N, 48, 48) -> (N, 7) float32
    ferlab.load_model(tta="shift")           # averages 10 views per face: slower, more accurate

Faces are FER2013-framed grayscale crops; the probabilities follow FER2013's label order
(`ferlab.EMOTIONS`). Normalisation comes from the model's card, so weights and
preprocessing cannot drift apart.

This module needs no PyTorch: each bundled model ships both as safetensors (for training,
distillation and PyTorch inference, `ferlab.torch_classifier`) and as an ONNX twin exported
from those weights, which ONNX Runtime runs by default, so ``pip install ferlab`` without the
training extra recognizes expressions too.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

from .data import EMOTIONS, IMAGE_SIZE
from .parallel import usable_cpus
from .tta import TTA_VIEWS, average_views, check_tta, tta_views

BUNDLED = "default"
BUNDLED_SUFFIXES = (".safetensors", ".onnx")
BACKENDS = ("auto", "torch", "onnx")
TRAIN_EXTRA = 'pip install "ferlab[train]"'
ENSEMBLE_SEPARATOR = "+"  # load_model("default+fast"): the two bundled models as one ensemble

# Measured on the 2-core CPU (benchmarks/classifier_throughput.py): batches of 64 keep a
# batch's activations in cache and run about twice as fast per face as batches of 512.
DEFAULT_BATCH_SIZE = 64


def check_faces(faces) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3 or faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"faces must be shaped (N, 48, 48), got {faces.shape}; crop and resize them first "
                         "(ferlab.analyze does this for whole photos)")
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 pixels 0..255, got {faces.dtype}")
    return faces


class ExpressionClassifier:
    """A FER classifier: ``predict_proba`` and ``predict`` on uint8 (N, 48, 48) faces.

    ``tta`` (test-time augmentation, see `ferlab.tta`): "flip" averages the logits of each
    face and its mirror image, "shift" also of 2-pixel shifts (10 views). Subclasses run the
    network: `ferlab.torch_classifier.TorchExpressionClassifier`, `OnnxExpressionClassifier`.
    """

    labels = EMOTIONS

    def __init__(self, card: dict, batch_size: int = DEFAULT_BATCH_SIZE, tta: str = "none"):
        self.card = card
        self.batch_size = batch_size
        self.tta = check_tta(tta)

    def predict_proba(self, faces, tta: str | None = None) -> np.ndarray:
        """Probabilities (N, 7) of uint8 faces (N, 48, 48); ``tta``: this call's test-time
        augmentation instead of the classifier's own."""
        faces = check_faces(faces)
        tta = self.tta if tta is None else check_tta(tta)
        out = []
        # All views of a face go through the network in one pass (one face's 10 views cost
        # about what one view does), with passes kept near batch_size rows.
        faces_per_pass = max(1, self.batch_size // TTA_VIEWS[tta])
        for start in range(0, len(faces), faces_per_pass):
            batch = faces[start : start + faces_per_pass]
            pixels = np.concatenate(tta_views(batch, tta), dtype=np.float32)[:, None]  # one copy, not two
            out.append(average_views(self._probabilities(pixels).reshape(-1, len(batch), 7)))
        return np.concatenate(out) if out else np.zeros((0, 7), np.float32)

    def _probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities (n, 7) for raw 0..255 float32 pixels (n, 1, 48, 48)."""
        raise NotImplementedError

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


class OnnxExpressionClassifier(ExpressionClassifier):
    """The same API on ONNX Runtime (a model written by `TorchExpressionClassifier.export_onnx`)."""

    def __init__(self, path: str | Path, card: dict, batch_size: int = DEFAULT_BATCH_SIZE, tta: str = "none"):
        import onnxruntime as ort

        super().__init__(card, batch_size, tta)
        self.path = Path(path)
        options = ort.SessionOptions()
        # An explicit thread count, one per CPU this process may use: left at 0, ONNX Runtime
        # pins its threads to cores, and on the 2-core EPYC runs of
        # benchmarks/classifier_throughput.py then flipped between about 4,600 and 5,700
        # faces/s (int8 `fast`); unpinned, 6,020 three times.
        options.intra_op_num_threads = usable_cpus()
        # Threads that sleep between calls instead of spinning: spinning ones held the cores
        # while the face detector ran next, and a 640x480 photo took about 13-16 ms instead
        # of 9.5 (benchmarks/photo_latency.py --backend onnx, EPYC); batched throughput was
        # the same either way.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": pixels})[0]


class EnsembleClassifier(ExpressionClassifier):
    """Several classifiers as one: the mean of their probabilities, each member's as its own
    `predict_proba` gives them (its TTA views averaged, its card's temperature applied), which
    is what `ferlab evaluate A B ...` measures. ``load_model("default+fast")`` builds one."""

    def __init__(self, members: list[ExpressionClassifier]):
        if len(members) < 2:
            raise ValueError("an ensemble needs two models or more")
        card = {"name": ENSEMBLE_SEPARATOR.join(str(m.card.get("name", "model")) for m in members),
                "labels": list(EMOTIONS), "members": [m.card for m in members]}
        self.members = members  # before the base class sets batch_size and tta through the properties below
        super().__init__(card, members[0].batch_size, members[0].tta)

    # The members do the batching and the TTA, so setting either on the ensemble sets it on each.
    @property
    def batch_size(self) -> int:
        return self.members[0].batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        for member in self.members:
            member.batch_size = value

    @property
    def tta(self) -> str:
        return self.members[0].tta

    @tta.setter
    def tta(self, value: str) -> None:
        for member in self.members:
            member.tta = check_tta(value)

    def predict_proba(self, faces, tta: str | None = None) -> np.ndarray:
        faces = check_faces(faces)
        return (sum(member.predict_proba(faces, tta) for member in self.members) / len(self.members)).astype(np.float32)


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401  (imported anyway by the PyTorch backend that asks)
    except ImportError:
        return False
    return True


def bundled_models() -> list[str]:
    """Names of the models shipped inside ferlab, for `load_model` (see their cards in ferlab/pretrained)."""
    folder = resources.files("ferlab") / "pretrained"
    return sorted({item.name.rsplit(".", 1)[0] for item in folder.iterdir() if item.name.endswith(BUNDLED_SUFFIXES)})


def bundled_path(name: str = BUNDLED) -> Path:
    """The weights of a bundled model: PyTorch safetensors, or ONNX for one shipped only so (int8)."""
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


def ensemble_members(name_or_path: str | Path | None) -> list[str]:
    """The models that a model argument names: ``"default+fast"`` names two, an existing path
    (even one with a "+" in it) or a single name one."""
    text = str(name_or_path if name_or_path is not None else BUNDLED)
    if ENSEMBLE_SEPARATOR not in text or Path(text).exists():
        return [text]
    members = text.split(ENSEMBLE_SEPARATOR)
    if not all(members):
        raise ValueError(f"{text!r}: an ensemble names its models joined by {ENSEMBLE_SEPARATOR!r}, e.g. 'default+fast'")
    return members


def load_model(name_or_path: str | Path | None = None, tta: str = "none", backend: str = "auto") -> ExpressionClassifier:
    """The bundled default model (no argument), another bundled model by name ("fast",
    "fast-int8", "robust" for blurred, noisy faces), or one trained by ferlab: a run folder, a
    ``.safetensors`` file with its ``.json`` card beside it, or an exported ``.onnx``. A path
    that exists wins over a bundled name. Names joined by "+" ("default+fast") give an
    `EnsembleClassifier` of those models.
    ``tta`` is "none", "flip" or "shift" (see `ExpressionClassifier`).

    ``backend``: "auto" runs a model on ONNX Runtime where it has an ONNX form (an ``.onnx``
    file, or the ``.onnx`` twin beside a ``.safetensors`` file: every bundled model has one),
    else on PyTorch; "onnx" insists on the ONNX form; "torch" takes PyTorch, which computes
    big batches of crops in bf16 where the CPU does so natively (about twice ONNX Runtime's
    fp32 throughput for the default model on the 2-core EPYC), while ONNX Runtime took about
    half PyTorch's time per photo beside the face detector and needs no PyTorch import
    (benchmarks/photo_latency.py, benchmarks/classifier_throughput.py)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    members = ensemble_members(name_or_path)
    if len(members) > 1:
        return EnsembleClassifier([load_model(member, tta, backend) for member in members])
    path = resolve_model(members[0])
    if is_onnx_file(path, backend):
        return OnnxExpressionClassifier(path, card_beside(path), tta=tta)
    has_twin = path.suffix == ".safetensors" and path.with_suffix(".onnx").exists()
    if backend == "onnx" or (backend == "auto" and has_twin):
        twin = onnx_form(path)
        return OnnxExpressionClassifier(twin, card_beside(twin), tta=tta)
    if not torch_installed():
        raise _pytorch_missing(path)
    from .models import load_trained
    from .torch_classifier import TorchExpressionClassifier

    model, card = load_trained(path)
    return TorchExpressionClassifier(model, card, tta=tta)


def is_onnx_file(path: Path, backend: str) -> bool:
    """Whether ``path`` is an exported ``.onnx`` file, which only ONNX Runtime runs: refused
    with a one-line error when ``backend`` asks for PyTorch."""
    if path.suffix != ".onnx":
        return False
    if backend == "torch":
        raise ValueError(f"{path}: an ONNX model runs on ONNX Runtime; the torch backend needs a run folder "
                         "or a .safetensors file")
    return True


def onnx_form(path: Path) -> Path:
    """The ONNX file that runs ``path`` (a resolved model) on ONNX Runtime: itself, or the
    twin beside a ``.safetensors`` file."""
    if path.suffix == ".onnx":
        return path
    twin = path.with_suffix(".onnx")
    if path.suffix == ".safetensors" and twin.exists():
        return twin
    if not torch_installed():
        raise _pytorch_missing(path)
    raise FileNotFoundError(f"{path}: no ONNX export beside it; write one with `ferlab export --onnx "
                            f"{twin} --model {path}`")


def _pytorch_missing(path: Path) -> ImportError:
    return ImportError(f"{path} is a PyTorch model and PyTorch is not installed: {TRAIN_EXTRA}, "
                       "or load an .onnx export of it (ferlab export --onnx, where PyTorch is)")


def onnx_logits(path: str | Path, at_card_temperature: bool = False):
    """An ONNX model as the ``logits_of(faces, tta)`` function `ferlab.metrics` takes.

    The exported graph gives probabilities at the card's temperature T. Their logs are its
    logits at T up to a constant per face, which changes no soft-max: what an ensemble
    averages (``at_card_temperature``). T times them are its logits at temperature 1, so that
    accuracy, loss and calibration come out as `ferlab.evaluate.evaluate_trained` measures
    them on the PyTorch weights. Each TTA mode opens its ONNX Runtime session when first asked."""
    path = onnx_form(resolve_model(path))
    scale = 1.0 if at_card_temperature else card_beside(path).get("temperature", 1.0)
    classifiers: dict[str, ExpressionClassifier] = {}

    def logits_of(faces: np.ndarray, tta: str) -> np.ndarray:
        if tta not in classifiers:
            classifiers[tta] = load_model(path, tta=tta, backend="onnx")
        return scale * np.log(np.maximum(classifiers[tta].predict_proba(faces), np.finfo(np.float32).tiny))

    return logits_of


def evaluate_exported(path: str | Path, data) -> dict:
    """`ferlab.evaluate.evaluate_trained`'s metrics for a model run through ONNX Runtime as
    users run it: an exported ``.onnx``, or the twin of a ``.safetensors`` (``data``: a loaded
    FER2013)."""
    from .metrics import evaluate_predictions

    path = onnx_form(resolve_model(path))
    card = card_beside(path)
    return {
        "model": card["model"],
        "engine": "onnxruntime",
        "best_epoch": card.get("epoch"),
        "trainable_parameters": card.get("trainable_parameters"),
        **evaluate_predictions(onnx_logits(path), data),
    }


def card_beside(path: Path) -> dict:
    """The model card written beside an exported model or a .safetensors file."""
    card_path = path.with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: missing model card beside {path.name}")
    return json.loads(card_path.read_text())
