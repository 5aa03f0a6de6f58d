"""Training images/s of a model (the paper's CNN by default): plain fp32 NCHW PyTorch vs ferlab's training path.

ferlab's path is `ferlab.train.train_one_epoch`: uint8 faces held in memory, normalised and
augmented in batches, channels_last and bf16 autocast where the CPU runs bf16 natively.
Both run in this process on the same random faces.

    python benchmarks/train_throughput.py [--model paper_cnn] [--images 4096] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from ferlab.evaluate import bf16_is_native
from ferlab.hardware import machine_description
from ferlab.models import create_model
from ferlab.train import TrainConfig, build_optimizer, build_scheduler, train_one_epoch


def plain_fp32(name: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    torch.manual_seed(0)
    model = create_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x_all = images.float().div(255).unsqueeze(1)
    start = time.perf_counter()
    for i in range(0, len(labels) - batch_size + 1, batch_size):
        loss = F.cross_entropy(model(x_all[i : i + batch_size]), labels[i : i + batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (len(labels) // batch_size * batch_size) / (time.perf_counter() - start)


def ferlab_path(name: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    config = TrainConfig(model=name, epochs=1, batch_size=batch_size, augment="light")
    torch.manual_seed(0)
    model = create_model(name).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, len(labels) // batch_size)
    start = time.perf_counter()
    train_one_epoch(model, optimizer, scheduler, images.unsqueeze(1), labels, config, 0, torch.device("cpu"), False)
    return (len(labels) // batch_size * batch_size) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="paper_cnn")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 48, 48), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 7, (args.images,), generator=generator)
    # Warm up both paths once (allocator, oneDNN kernel selection) before timing.
    warm_up = images[: 4 * args.batch_size], labels[: 4 * args.batch_size], args.batch_size
    plain_fp32(args.model, *warm_up)
    ferlab_path(args.model, *warm_up)
    baseline = plain_fp32(args.model, images, labels, args.batch_size)
    fast = ferlab_path(args.model, images, labels, args.batch_size)
    print(f"machine: {machine_description()}, bf16 native: {bf16_is_native()}; model {args.model}")
    print(f"plain fp32 NCHW : {baseline:8.1f} images/s")
    print(f"ferlab training : {fast:8.1f} images/s")
    print(f"speed-up        : {fast / baseline:8.2f}x")


if __name__ == "__main__":
    main()
