"""ResNet-style CNNs for 48x48 faces (He et al., basic blocks), for the accuracy work.

Unlike ImageNet ResNets, the stem keeps full resolution (3x3 conv, stride 1, no max pool):
a 48x48 face has no pixels to spare. Four stages halve the resolution from the second on
(48 -> 24 -> 12 -> 6), then global average pooling, dropout and a 7-way classifier.
``stem_pool`` trades that for speed as fast_cnn does: the stem's output is max-pooled to
24x24 at once, so the stages work at 24, 12, 6 and 3 pixels and train about 3x faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .fast_cnn import MaxPool2x2
from .registry import make_config, register_model


@dataclass
class ResNetConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    dropout: float = 0.2
    num_classes: int = 7
    stem_pool: bool = False  # 2x2 max pool after the stem: stages at 24..3 px instead of 48..6


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(nn.Conv2d(1, config.widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(config.widths[0]), nn.ReLU(inplace=True))
        if config.stem_pool:
            self.stem.append(MaxPool2x2())
        stages, channels = [], config.widths[0]
        for index, (width, count) in enumerate(zip(config.widths, config.blocks, strict=True)):
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(config.dropout),
                                  nn.Linear(channels, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


HALF_WIDTHS = (32, 64, 128, 256)


def _build(defaults: dict, overrides: dict) -> ResNet:
    return ResNet(make_config(ResNetConfig, "resnet", defaults, overrides))


@register_model
def resnet18_fer(**overrides) -> ResNet:
    """ResNet-18 layout (2-2-2-2 basic blocks, 64-512 channels), about 11 M parameters."""
    return _build({}, overrides)


@register_model
def resnet_fer_small(**overrides) -> ResNet:
    """Half-width ResNet-18 (32-256 channels), about 2.8 M parameters: a size that ships."""
    return _build({"widths": HALF_WIDTHS}, overrides)


@register_model
def resnet_fer_fast(**overrides) -> ResNet:
    """resnet_fer_small with its stem pooled to 24x24 (``stem_pool``): the same 2.8 M
    parameters, trained about 3x faster (benchmarks/train_throughput.py)."""
    return _build({"widths": HALF_WIDTHS, "stem_pool": True}, overrides)
