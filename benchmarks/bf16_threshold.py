"""From how many faces per pass bf16 beats fp32: ``ferlab.torch_classifier.BF16_MIN_FACES``.

    python benchmarks/bf16_threshold.py [--model NAME_OR_PATH ...]
"""

from __future__ import annotations

import argparse
import time

import torch

from ferlab.classifier import load_model
from ferlab.hardware import machine_description


def milliseconds_per_pass(network: torch.nn.Module, pixels: torch.Tensor, passes: int = 50) -> float:
    """Best of 5 timings of ``passes`` passes, after a warm-up."""
    with torch.inference_mode():
        for _ in range(20):
            network(pixels)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(passes):
                network(pixels)
            best = min(best, (time.perf_counter() - start) / passes)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["default", "fast"])
    args = parser.parse_args()
    print(f"{machine_description()}; ms per pass, fp32 / bf16")
    for name in args.model:
        classifier = load_model(name, backend="torch")
        if classifier.network_bf16 is None:
            raise SystemExit("this CPU has no native bf16: the classifier always runs fp32")
        for faces in (1, 2, 4, 8, 16):
            pixels = torch.randint(0, 256, (faces, 1, 48, 48)).float().contiguous(memory_format=torch.channels_last)
            fp32 = milliseconds_per_pass(classifier.network, pixels)
            bf16 = milliseconds_per_pass(classifier.network_bf16, pixels)
            print(f"{name:8s} {faces:3d} faces: {fp32:6.2f} / {bf16:6.2f} ms")


if __name__ == "__main__":
    main()
