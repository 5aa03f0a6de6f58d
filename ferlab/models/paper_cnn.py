"""The paper's VGG-style CNN (Lin & Shi, Figure 2) and its two ablations.

Three blocks of three 3x3 ReLU convolutions (32, 64, 128 filters, 'same' padding), each
block closed by batch norm and 2x2 max pooling; then dense 64 + ReLU, dropout 0.5 and a
7-way classifier. Soft-max is left to the loss / `predict_proba`, as usual in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .registry import make_config, register_model


@dataclass
class PaperCNNConfig:
    widths: tuple[int, ...] = (32, 64, 128)
    convs_per_block: int = 3
    hidden: int = 64
    dropout: float = 0.5
    batch_norm: bool = True
    bn_every_conv: bool = False  # batch norm after each conv, not only at the end of a block
    num_classes: int = 7
    in_size: int = 48


class PaperCNN(nn.Module):
    def __init__(self, config: PaperCNNConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = 1
        for width in config.widths:
            for _ in range(config.convs_per_block):
                layers.append(nn.Conv2d(channels, width, 3, padding=1))
                if config.bn_every_conv:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                channels = width
            if config.batch_norm and not config.bn_every_conv:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = config.in_size // 2 ** len(config.widths)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _build(defaults: dict, overrides: dict) -> PaperCNN:
    return PaperCNN(make_config(PaperCNNConfig, "paper_cnn", defaults, overrides))


@register_model
def paper_cnn(**overrides) -> PaperCNN:
    """The paper's final model: batch norm and dropout 0.5."""
    return _build({}, overrides)


@register_model
def vgg_fast(**overrides) -> PaperCNN:
    """The paper's layout with batch norm after every convolution: same cost, much faster to train."""
    return _build({"bn_every_conv": True}, overrides)


@register_model
def paper_cnn_no_bn(**overrides) -> PaperCNN:
    """Ablation: the paper's CNN without batch normalization."""
    return _build({"batch_norm": False}, overrides)


@register_model
def paper_cnn_no_dropout(**overrides) -> PaperCNN:
    """Ablation: the paper's CNN without dropout."""
    return _build({"dropout": 0.0}, overrides)
