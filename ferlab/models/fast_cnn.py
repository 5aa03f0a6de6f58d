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
from torch.nn.utils.fusion import fuse_conv_bn_weights

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
    upsample_to: int = 0  # above 0: the face is first resized to this many pixels a side, so every stage sees more
    se_reduction: int = 0  # above 0: a squeeze-and-excitation gate ends each stage, this many times thinner
    rep_branches: bool = False  # train each 3x3 conv beside 1x1 and identity branches (RepVGG), folded for inference
    standardise_faces: bool = False  # each face to mean 0, std 1 first: dim or flat light reaches the stem as typical


# In normalised units (grey levels / (255 x 0.2551)): 1e-3 is a spread of about 2 grey levels.
FACE_VARIANCE_FLOOR = 1e-3


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


def conv_bn(in_channels: int, out_channels: int, rep_branches: bool = False) -> list[nn.Module]:
    if rep_branches:
        return [RepConvBN(in_channels, out_channels)]
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels)]


def _folded(kernel: torch.Tensor, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel and bias of a bias-free convolution followed by ``norm`` in evaluation mode, as one."""
    return fuse_conv_bn_weights(kernel, None, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias)


class RepConvBN(nn.Module):
    """A 3x3 conv + batch norm trained with parallel branches (Ding et al., RepVGG, 2021).

    Beside the 3x3 convolution run a 1x1 convolution and, where the width does not change,
    the input itself, each with its own batch norm, and the three are summed. The extra
    paths make the network easier to optimize; being linear, they fold into one 3x3
    convolution afterwards (`folded`), so the trained model classifies exactly as fast as
    one trained without them.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv3 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm3 = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.norm_identity = nn.BatchNorm2d(out_channels) if in_channels == out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm3(self.conv3(x)) + self.norm1(self.conv1(x))
        return out + self.norm_identity(x) if self.norm_identity is not None else out

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        """The single 3x3 convolution (with bias) this block computes in evaluation mode."""
        kernel, bias = _folded(self.conv3.weight, self.norm3)
        kernel1, bias1 = _folded(self.conv1.weight, self.norm1)
        kernel, bias = kernel + F.pad(kernel1, [1, 1, 1, 1]), bias + bias1
        if self.norm_identity is not None:
            identity = torch.zeros_like(kernel)
            identity[range(len(kernel)), range(len(kernel)), 1, 1] = 1.0
            kernel_id, bias_id = _folded(identity, self.norm_identity)
            kernel, bias = kernel + kernel_id, bias + bias_id
        conv = nn.Conv2d(self.conv3.in_channels, self.conv3.out_channels, 3, padding=1,
                         device=kernel.device, dtype=kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        return conv


class FastCNN(nn.Module):
    def __init__(self, config: FastCNNConfig):
        super().__init__()
        if config.upsample_to and config.upsample_to < config.in_size:
            raise ValueError(f"upsample_to ({config.upsample_to}) is below the input's {config.in_size} pixels")
        self.config = config
        # ReLU and max pooling commute, so each stage pools first and applies ReLU to a
        # quarter of the values.
        layers = [*conv_bn(1, config.stem_width, config.rep_branches), MaxPool2x2(), nn.ReLU(inplace=True)]
        channels = config.stem_width
        for width in config.widths:
            for index in range(config.convs_per_stage):
                layers += conv_bn(channels, width, config.rep_branches)
                channels = width
                if index < config.convs_per_stage - 1:
                    layers.append(nn.ReLU(inplace=True))
            if config.se_reduction:
                # The gate is positive per channel, so it commutes with the pooling and ReLU after it.
                layers.append(SqueezeExcite(width, config.se_reduction))
            layers += [MaxPool2x2(), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = (config.upsample_to or config.in_size) // 2 ** (len(config.widths) + 1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(channels * side * side, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.standardise_faces:
            # A face's brightness and contrast say little of its expression; taken away here
            # (inside the network, so every backend and export does the same), a face in half
            # the light or behind haze looks to the network like any other. The floor on the
            # variance (a spread of about 2 grey levels) keeps a blank picture blank.
            x = F.layer_norm(x, (1, self.config.in_size, self.config.in_size), eps=FACE_VARIANCE_FLOOR)
        if self.config.upsample_to:
            # The stem pools at once, for speed; a larger picture keeps more detail in the stages.
            x = F.interpolate(x, size=(self.config.upsample_to,) * 2, mode="bilinear", align_corners=False)
        return self.head(self.features(x))

    def fold_branches(self) -> FastCNN:
        """Fold every `RepConvBN` into its single 3x3 convolution, for inference (see
        `load_trained`); a no-op without ``rep_branches``. Training cannot go on afterwards."""
        for index, layer in enumerate(self.features):
            if isinstance(layer, RepConvBN):
                self.features[index] = layer.folded()
        return self


def _build(defaults: dict, overrides: dict) -> FastCNN:
    return FastCNN(make_config(FastCNNConfig, "fast_cnn", defaults, overrides))


@register_model
def fast_cnn(**overrides) -> FastCNN:
    """16-channel full-resolution stem, then 32/64/128-channel stages: about 0.6 M parameters."""
    return _build({}, overrides)
