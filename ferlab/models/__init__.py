"""Model registry. Each architecture lives in its own module and registers its variants."""

from . import fast_cnn, paper_cnn, resnet  # noqa: F401  (each module registers its variants)
from .registry import (
    create_model,
    list_models,
    load_trained,
    register_model,
    trainable_parameters,
    trained_card,
    weights_file,
)

__all__ = ["create_model", "list_models", "load_trained", "register_model", "trainable_parameters", "trained_card",
           "weights_file"]
