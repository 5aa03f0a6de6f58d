"""A compact VGG-style CNN built for speed on CPUs: the fast default model.

The paper's CNN spends most of its time in its first block: three 32-channel convolutions
at the full 48x48 resolution. Here only one thin (16-channel) convolution sees the full
resolution; it is pooled to 24x24 at once, and the 3x3 conv + batch norm stages that
follow (32, 64, 128 channels by default, two convolutions each) work at 24, 12 and 6
pixels. On the 2-core CPU this trains about 4x and classifies about 5x faster than the
paper's CNN (see `benchmarks/`), and with a longer schedule it is also more accurate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .registry import make_config, register_model


@dataclass
class FastCNNConfig:
    stem_width: int = 16
    widths: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 2
    hidden: int = 256
    dropout: float = 0.3
    num_classes: int = 7
    in_size: int = 48
    se_reduction: int = 0  # above 0: a squeeze-and-excitation gate ends each stage, this many times thinner


class MaxPool2x2(nn.Module):
    """2x2 max pooling, stride 2.

    For inference it takes two element-wise maxima over strided views: the same values as
    ``nn.MaxPool2d(2)``, about twice as fast on the CPU's channels_last bf16 tensors (and
    pooling is a third of this network's inference time). Training keeps PyTorch's pooling
    kernel, whose backward pass is much faster than that of the maxima, and so does ONNX
    export: ONNX Runtime runs (and quantizes) one MaxPool faster than slices and maxima.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or torch.onnx.is_in_onnx_export():
            return F.max_pool2d(x, 2)
        rows = torch.maximum(x[:, :, 0::2], x[:, :, 1::2])
        return torch.maximum(rows[:, :, :, 0::2], rows[:, :, :, 1::2])


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018): a small gate looks at each channel's mean over the
    whole face and rescales the channel, so a stage can weigh its features face by face."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def conv_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)]


class FastCNN(nn.Module):
    def __init__(self, config: FastCNNConfig):
        super().__init__()
        self.config = config
        # ReLU and max pooling commute, so each stage pools first and applies ReLU to a
        # quarter of the values.
        layers = [*conv_bn(1, config.stem_width), MaxPool2x2(), nn.ReLU(inplace=True)]
        channels = config.stem_width
        for width in config.widths:
            for index in range(config.convs_per_stage):
                layers += conv_bn(channels, width)
                channels = width
                if index < config.convs_per_stage - 1:
                    layers.append(nn.ReLU(inplace=True))
            if config.se_reduction:
                # The gate is positive per channel, so it commutes with the pooling and ReLU after it.
                layers.append(SqueezeExcite(width, config.se_reduction))
            layers += [MaxPool2x2(), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = config.in_size // 2 ** (len(config.widths) + 1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(channels * side * side, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _build(defaults: dict, overrides: dict) -> FastCNN:
    return FastCNN(make_config(FastCNNConfig, "fast_cnn", defaults, overrides))


@register_model
def fast_cnn(**overrides) -> FastCNN:
    """16-channel full-resolution stem, then 32/64/128-channel stages: about 0.6 M parameters."""
    return _build({}, overrides)
