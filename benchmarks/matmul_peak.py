"""What the CPU's matrix units give at best: multiply-adds per second of one large matrix
product in fp32, bf16 and int8 (PyTorch, all threads). The ceiling for a classifier's
throughput is this figure divided by its multiply-adds per face (benchmarks/model_cost.py).

    python benchmarks/matmul_peak.py [--size 2048] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from ferlab.hardware import machine_description


def best_rate(product, size: int, repeats: int) -> float:
    """Multiply-adds per second of ``product()`` on (size x size) matrices, best of ``repeats``."""
    product()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = max(best, size**3 / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine_description()}")
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(args.size, args.size).to(dtype), torch.randn(args.size, args.size).to(dtype)
        rate = best_rate(lambda a=a, b=b: a @ b, args.size, args.repeats)
        print(f"{str(dtype).removeprefix('torch.'):9s} {rate / 1e9:6.0f} G multiply-adds/s")
    a, b = (torch.randint(-128, 128, (args.size, args.size), dtype=torch.int8) for _ in range(2))
    rate = best_rate(lambda: torch._int_mm(a, b), args.size, args.repeats)  # int8 in, int32 out
    print(f"{'int8':9s} {rate / 1e9:6.0f} G multiply-adds/s")


if __name__ == "__main__":
    main()
