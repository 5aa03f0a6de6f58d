"""Arithmetic per face of a model: multiply-adds of its convolutions and dense layers, and parameters.

    python benchmarks/model_cost.py [--model default fast runs/NAME ...]

Classifier speed is close to the CPU's arithmetic rate divided by this cost, which tells
what a speed goal asks of a network on a given CPU (reports/benchmarks.md, "Two CPUs").
"""

from __future__ import annotations

import argparse

import torch

from ferlab.classifier import resolve_model
from ferlab.models import load_trained, trainable_parameters


def multiply_adds_per_face(network: torch.nn.Module) -> int:
    """Counted on one 48x48 face by hooks on every convolution and dense layer."""
    total = 0

    def count(layer: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, torch.nn.Conv2d):
            kernel = layer.kernel_size[0] * layer.kernel_size[1]
            total += output.numel() * (layer.in_channels // layer.groups) * kernel
        else:
            total += layer.in_features * layer.out_features

    hooks = [layer.register_forward_hook(count) for layer in network.modules()
             if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        network.eval()(torch.zeros(1, 1, 48, 48))
    for hook in hooks:
        hook.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["default", "fast"], help="bundled names or trained models")
    args = parser.parse_args()
    for name in args.model:
        network, card = load_trained(resolve_model(name))
        parameters = trainable_parameters(network)
        print(f"{name:10s} {card['model']} {card.get('model_options') or {}}: "
              f"{multiply_adds_per_face(network) / 1e6:6.1f} M multiply-adds per face, {parameters:,} parameters")


if __name__ == "__main__":
    main()
