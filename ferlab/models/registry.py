"""A small timm-style registry: ``create_model("paper_cnn", batch_norm=False)``."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import fields
from importlib import resources
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``factory`` available to `create_model` under its function name."""
    _REGISTRY[factory.__name__] = factory
    return factory


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; ``overrides`` replace fields of its config dataclass."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**overrides)


def make_config(config_class: type, family: str, defaults: dict, overrides: dict):
    """``config_class`` with a variant's ``defaults``, then the caller's ``overrides``; an
    unknown field is refused with the list of known ones."""
    known = {f.name for f in fields(config_class)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown {family} option(s) {sorted(unknown)}; known: {sorted(known)}")
    return config_class(**{**defaults, **overrides})


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def trainable_parameters(model: nn.Module) -> int:
    """The paper's parameter count: weights the optimizer updates (not batch-norm statistics)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def weights_file(path: str | Path) -> Path:
    """The safetensors file of a trained model given as that file, as its run folder, or as
    the name of a model bundled with ferlab (``"default"``: fine-tuning it, distilling from it)."""
    path = Path(path)
    if path.is_dir():
        return path / "best.safetensors"
    bundled = _pretrained_folder() / f"{path}.safetensors"
    return bundled if not path.exists() and path.name == str(path) and bundled.exists() else path


def _pretrained_folder() -> Path:
    return Path(str(resources.files("ferlab") / "pretrained"))


def _existing_weights(path: str | Path) -> Path:
    weights = weights_file(path)
    if not weights.exists():
        bundled = sorted(p.stem for p in _pretrained_folder().glob("*.safetensors"))
        raise FileNotFoundError(f"{weights}: no such trained model; give a run folder, a .safetensors file or the "
                                f"name of a bundled model with PyTorch weights ({', '.join(bundled)})")
    return weights


def trained_card(weights: str | Path) -> dict:
    """The JSON card beside a trained model's weights (`weights_file` finds them): its
    architecture, model options, training command and measured accuracy."""
    weights = _existing_weights(weights)
    card_path = weights.with_suffix(".json")
    if not card_path.exists():
        card_path = weights.with_name("model.json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: missing model card beside {weights.name}")
    return json.loads(card_path.read_text())


def load_trained(weights: str | Path, card: dict | None = None) -> tuple[nn.Module, dict]:
    """A model from safetensors weights and its JSON card (``model.json`` beside them).

    ``weights`` is the ``.safetensors`` file or the folder holding ``best.safetensors``.
    Returns the model in eval mode and the card. Branches a model only trains with (a
    ``fold_branches`` method, as fast_cnn's ``rep_branches``) are folded away: the model
    returned is for inference, not for more training.
    """
    weights = _existing_weights(weights)
    if card is None:
        card = trained_card(weights)
    model = create_model(card["model"], **card.get("model_options", {}))
    try:
        state = load_file(str(weights))
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"{weights}: not a valid safetensors weights file ({error})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise ValueError(f"{weights}: weights do not fit model {card['model']!r}: {first}") from None
    model.eval()
    if hasattr(model, "fold_branches"):
        model.fold_branches()
    return model, card
