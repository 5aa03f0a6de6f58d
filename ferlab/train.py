"""One training loop, readable top to bottom.

`train(config, data, out_dir)` trains a registered model on FER2013 Training, selects the
best epoch on PublicTest (the paper's validation split) and never looks at PrivateTest.
Everything it writes lives in ``out_dir``:

- ``config.json``    the resolved `TrainConfig`
- ``history.json``   one row per epoch: train/val loss and accuracy, seconds, and the machine
- ``last.pt``        full state (model, optimizer, scheduler, epoch, history), every epoch
- ``best.safetensors`` + ``model.json``  weights and card of the best PublicTest epoch

Files are written atomically (temp file + rename), so a run killed at any moment leaves
the previous epoch's state intact, and ``resume=True`` continues from it. Each epoch's
randomness (shuffle, augmentation, dropout) is seeded from ``(seed, epoch)``, so a resumed
run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.fx.experimental.optimization import fuse
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from tqdm import tqdm

from .atomic import atomic_write, atomic_write_text
from .config import TrainConfig
from .data import FER2013, PIXEL_MEAN, PIXEL_STD, file_sha256, train_val_test
from .evaluate import autocast, pick_device, predict_logits, to_input
from .hardware import machine_description
from .metrics import classification_metrics
from .models import create_model, load_trained, weights_file


def augment_batch(images: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Random flips and affine jitter on a float NCHW batch, all in one batched grid_sample."""
    if mode == "none":
        return images
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    if mode == "light":
        angle, scale, shift = torch.zeros(n), torch.ones(n), 4 / 24  # +-4 px
    elif mode == "strong":
        angle, scale, shift = uniform(-15, 15) * math.pi / 180, uniform(0.85, 1.15), 0.2
    else:
        raise ValueError(f"unknown augment mode {mode!r}; use none, light or strong")
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    if mode == "strong":  # random erasing of one rectangle in half the images
        side = (uniform(0.1, 0.4) * images.shape[-1]).long()
        y0 = (torch.rand(n, generator=generator) * (images.shape[-2] - side)).long()
        x0 = (torch.rand(n, generator=generator) * (images.shape[-1] - side)).long()
        rows = torch.arange(images.shape[-2]).view(1, -1, 1)
        cols = torch.arange(images.shape[-1]).view(1, 1, -1)
        in_rows = (rows >= y0.view(-1, 1, 1)) & (rows < (y0 + side).view(-1, 1, 1))
        in_cols = (cols >= x0.view(-1, 1, 1)) & (cols < (x0 + side).view(-1, 1, 1))
        box = in_rows & in_cols & (torch.rand(n, generator=generator) < 0.5).view(-1, 1, 1)
        out = out.masked_fill(box.unsqueeze(1).to(out.device), 0.0)
    return out.contiguous(memory_format=torch.channels_last)


def degrade_batch(images: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """``share`` of a normalised float NCHW batch spoiled as dim light and poor cameras spoil
    faces, each face by its own random amounts, each kind of harm to half of them: blurred
    (sigma 0.3-1.2 pixels), flatter or harsher (contrast x0.4-1.2 about the face's mean),
    darker or brighter (gamma 0.7-1.5, then x0.3-1.2), noisy (sigma up to 5% of white), then
    8-bit again. The rest are returned as they are. FER2013's faces have little of this, and a
    model trained on them alone loses about 10 points on faces at half their brightness
    (benchmarks/corruptions.py)."""
    if share <= 0:
        return images
    n, device = images.shape[0], images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * (high - low) + low).view(n, 1, 1, 1).to(device)

    def half(values: torch.Tensor, otherwise: float) -> torch.Tensor:
        return torch.where(torch.rand(n, 1, 1, 1, generator=generator).to(device) < 0.5, values, otherwise)

    def log_uniform(low: float, high: float) -> torch.Tensor:
        return uniform(math.log(low), math.log(high)).exp()

    chosen = torch.rand(n, 1, 1, 1, generator=generator).to(device) < share
    pixels = (images.float() * PIXEL_STD + PIXEL_MEAN).clamp(0, 1)
    pixels = _gaussian_blur(pixels, half(uniform(0.3, 1.2), 0.0).view(n))
    mean = pixels.mean((1, 2, 3), keepdim=True)
    pixels = (mean + (pixels - mean) * half(log_uniform(0.4, 1.2), 1.0)).clamp(0, 1)
    dim = torch.rand(n, 1, 1, 1, generator=generator).to(device) < 0.5  # exposure: gamma and gain together
    pixels = torch.where(dim, pixels.pow(uniform(0.7, 1.5)) * uniform(0.3, 1.2), pixels)
    pixels = pixels + torch.randn(pixels.shape, generator=generator).to(device) * half(uniform(0.0, 0.05), 0.0)
    spoiled = ((pixels.clamp(0, 1) * 255).round() / 255 - PIXEL_MEAN) / PIXEL_STD
    return torch.where(chosen, spoiled, images).contiguous(memory_format=torch.channels_last)


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Each image of a (N, 1, H, W) batch blurred by its own ``sigma`` (0: left as it is)."""
    n, _, height, width = images.shape
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernels = torch.exp(-offsets.square() / (2 * sigma.clamp(min=1e-3).view(n, 1).square()))
    kernels = kernels / kernels.sum(1, keepdim=True)
    padded = F.pad(images.reshape(1, n, height, width), (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernels.view(n, 1, -1, 1), groups=n)
    return F.conv2d(rows, kernels.view(n, 1, 1, -1), groups=n).view(n, 1, height, width)


def mix_batch(
    images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix: each face is blended with another face of the batch.

    Returns the mixed images, the partner labels and the weight ``lam`` of the original
    labels; the loss is ``lam * CE(labels) + (1 - lam) * CE(partner labels)``.
    """
    if config.mix == "none" or torch.rand(1, generator=generator).item() >= config.mix_prob:
        return images, labels, 1.0
    partner = torch.randperm(len(labels), generator=generator)
    lam = float(torch.distributions.Beta(config.mix_alpha, config.mix_alpha).sample())
    if config.mix == "mixup":
        mixed = lam * images + (1 - lam) * images[partner]
    elif config.mix == "cutmix":  # paste one rectangle of the partner; lam is the area left
        height, width = images.shape[-2:]
        cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        y0 = int(torch.randint(0, height - cut_h + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, width - cut_w + 1, (1,), generator=generator))
        mixed = images.clone()
        mixed[..., y0 : y0 + cut_h, x0 : x0 + cut_w] = images[partner][..., y0 : y0 + cut_h, x0 : x0 + cut_w]
        lam = 1 - cut_h * cut_w / (height * width)
    else:
        raise ValueError(f"unknown mix mode {config.mix!r}; use none, mixup or cutmix")
    return mixed, labels[partner.to(labels.device)], lam


def check_normalisation(card: dict, source: str) -> None:
    """A trained model fed other pixel statistics than this training's would see other inputs."""
    if (card["input"]["mean"], card["input"]["std"]) != (PIXEL_MEAN, PIXEL_STD):
        raise ValueError(f"{source}: its input normalisation differs from this training's")


class Teacher:
    """Trained models whose averaged softened probabilities the student learns to match
    (Hinton et al. 2015), computed on the student's own augmented (and mixed) batches.
    ``sha256`` fingerprints each teacher's weights: the config names teachers by path, and a
    file replaced under the same path (a bundled default, say) would silently change a
    resumed run's targets."""

    def __init__(self, paths: str, temperature: float, device: torch.device, mode: str = "average"):
        self.temperature = temperature
        self.mode = mode
        self.models = []
        self.sha256: dict[str, str] = {}
        for path in filter(None, (p.strip() for p in paths.split(","))):
            model, card = load_trained(path)
            self.sha256[path] = file_sha256(weights_file(path))
            check_normalisation(card, f"teacher {path}")
            # Inference only: batch norm folded into the convolutions makes the teachers cheaper.
            self.models.append(fuse(model).to(device, memory_format=torch.channels_last))
        if not self.models:
            raise ValueError("teacher: give at least one trained model (run folder or .safetensors)")

    @torch.no_grad()
    def soft_targets(self, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
        if self.mode == "split":
            # Face i goes to teacher i mod n. The distillation loss is linear in its targets, so
            # over the shuffled batches of an epoch this follows the averaged teachers' targets
            # at the cost of one teacher's forward pass, not n.
            n = len(self.models)
            with autocast(device, precision):
                parts = [F.softmax(model(x[k::n]).float() / self.temperature, 1) for k, model in enumerate(self.models)]
            targets = parts[0].new_empty(len(x), parts[0].shape[1])
            for k, probs in enumerate(parts):
                targets[k::n] = probs
            return targets
        with autocast(device, precision):
            logits = [model(x).float() for model in self.models]
        return torch.stack([F.softmax(t / self.temperature, 1) for t in logits]).mean(0)


def batch_norm_batches(images: torch.Tensor, seed: int, device: torch.device) -> list[torch.Tensor]:
    """4,096 training faces (seeded), in batches of 512, on which averaged weights (EMA, a
    soup) get batch-norm statistics of their own."""
    rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:4096]
    return [to_input(images[rows[i : i + 512]], device) for i in range(0, len(rows), 512)]


def load_initial_weights(model: nn.Module, config: TrainConfig) -> str:
    """Load ``config.init``'s trained weights into ``model`` (fine-tuning) and return their
    SHA-256, which the run's card keeps: the config names the file only by its path."""
    _, card = load_trained(config.init)  # checks the file and its card, with errors that name them
    check_normalisation(card, f"init {config.init}")
    weights = weights_file(config.init)
    fits = card["model"] == config.model
    if fits:
        # Options that leave the weights' names and shapes alone (dropout, standardise_faces) may change.
        try:
            model.load_state_dict(load_file(str(weights)))  # unfolded, as training saves them
        except RuntimeError:
            fits = False
    if not fits:
        raise ValueError(
            f"init {config.init}: a {card['model']} model with options {card.get('model_options', {})}, whose "
            f"weights do not fit this run's {config.model} with {config.model_options}; give the --model and "
            "--model-option flags it was trained with"
        )
    return file_sha256(weights)


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL divergence to the teachers' softened probabilities, scaled by T^2 so that its
    gradients keep their size whatever the temperature."""
    log_student = F.log_softmax(logits / temperature, 1)
    return F.kl_div(log_student, soft_targets, reduction="batchmean") * temperature**2


def batch_loss(model, x, y, partner_y, lam, targets, config, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's logits and loss on one batch: cross-entropy on the (possibly mixed)
    labels, blended with the distillation loss when the teachers' ``targets`` are given."""
    with autocast(device, config.precision):
        logits = model(x).float()  # losses in fp32 under bf16 autocast
        loss = lam * F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        if lam < 1.0:
            loss = loss + (1 - lam) * F.cross_entropy(logits, partner_y, label_smoothing=config.label_smoothing)
        if targets is not None:
            loss = (1 - config.distill_weight) * loss + config.distill_weight * distillation_loss(
                logits, targets, config.distill_temperature
            )
    return logits, loss


def climb_gradient(model: nn.Module, rho: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """SAM's first half: move the weights a distance ``rho`` along their gradient, where the
    loss rises fastest nearby. The step then uses the gradient taken there, which favours
    flat minima. Returns each moved weight with its move, to take back before the step."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in params])
    scale = rho / (norm + 1e-12)
    moves = []
    with torch.no_grad():
        for param in params:
            move = param.grad * scale
            param.add_(move)
            moves.append((param, move))
    return moves


@contextmanager
def frozen_batch_norm_statistics(model: nn.Module):
    """SAM's second pass sees the same faces again: leave the running statistics as the
    first pass set them (momentum 0 keeps them)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, config.lr, (config.beta1, config.beta2), weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, config.lr, (config.beta1, config.beta2), weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use adam, adamw or sgd")


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=total, pct_start=0.2)
    raise ValueError(f"unknown schedule {config.schedule!r}; use constant, cosine or onecycle")


def train_one_epoch(
    model, optimizer, scheduler, images, labels, config, epoch, device, progress=True, rank=0, world=1, ema=None,
    teacher=None,
):
    """One pass over the training images; returns (mean loss, accuracy) on augmented batches.

    With ``world`` > 1 (DDP), every rank draws the same shuffled order and takes every
    ``world``-th image of it, so the ranks share out one epoch between them.
    """
    seed = config.seed * 100_003 + epoch
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[rank::world]
    generator = torch.Generator().manual_seed(seed + 7919 * (rank + 1))  # augmentation
    torch.manual_seed(seed + 7919 * (rank + 1))  # dropout
    model.train()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen
    # Full batches only (a batch of one would break batch norm); the rest waits a new epoch.
    n_batches = max(1, len(order) // config.batch_size)
    bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress)
    for batch in bar:
        rows = order[batch * config.batch_size : (batch + 1) * config.batch_size]
        x = augment_batch(to_input(images[rows], device), config.augment, generator)
        y = labels[rows].to(device)
        x, partner_y, lam = mix_batch(x, y, config, generator)
        # The teachers see each face unspoiled: the student learns what they say of the clean face.
        targets = teacher.soft_targets(x, device, config.precision) if teacher is not None else None
        x = degrade_batch(x, config.degrade, generator)
        optimizer.zero_grad(set_to_none=True)
        logits, loss = batch_loss(model, x, y, partner_y, lam, targets, config, device)
        loss.backward()
        if config.sam_rho > 0:  # sharpness-aware: step with the gradient from the nearby uphill weights
            moves = climb_gradient(model, config.sam_rho)
            optimizer.zero_grad(set_to_none=True)
            with frozen_batch_norm_statistics(model):
                batch_loss(model, x, y, partner_y, lam, targets, config, device)[1].backward()
            with torch.no_grad():
                for param, move in moves:
                    param.sub_(move)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model.module if world > 1 else model)
        totals += torch.tensor([loss.item() * len(rows), (logits.argmax(1) == y).sum().item(), len(rows)])
        bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}", acc=f"{totals[1] / totals[2]:.3f}")
    if world > 1:
        dist.all_reduce(totals)
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


@contextmanager
def _distributed(config: TrainConfig):
    """Rank, world size and device; under torchrun, the process group for the run.

    The group is destroyed on the way out: a process that exits with Gloo's group alive can
    abort (SIGABRT) while the interpreter tears down the tensors its threads still hold.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0, 1, pick_device(config.device)
        return
    cuda = torch.cuda.is_available() and config.device != "cpu"
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    try:
        yield dist.get_rank(), world, torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    finally:
        if owned:
            dist.destroy_process_group()


def train(
    config: TrainConfig, data: FER2013, out_dir: str | Path, resume: bool = True, progress: bool = True,
    max_minutes: float | None = None,
) -> dict:
    """Train, checkpoint every epoch, and return the history and best PublicTest accuracy.

    ``max_minutes`` stops after the epoch that crosses the limit (resume later to go on),
    which keeps every step of a long run under a fixed wall time. Launched by ``torchrun``
    it trains data-parallel (DDP); rank 0 evaluates and writes every file.
    """
    with _distributed(config) as (rank, world, device):
        return _train(config, data, Path(out_dir), resume, progress, max_minutes, rank, world, device)


def _train(
    config: TrainConfig, data: FER2013, out_dir: Path, resume: bool, progress: bool, max_minutes: float | None,
    rank: int, world: int, device: torch.device,
) -> dict:
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    splits = train_val_test(data)
    train_images, train_labels = splits["Training"]
    if config.max_train is not None and config.max_train < len(train_labels):
        rows = np.random.default_rng(config.seed).permutation(len(train_labels))[: config.max_train]
        train_images, train_labels = train_images[rows], train_labels[rows]
    images, labels = torch.from_numpy(train_images).unsqueeze(1), torch.from_numpy(train_labels)
    val_images, val_labels = splits["PublicTest"]

    torch.manual_seed(config.seed)
    model = create_model(config.model, **config.model_options)
    checkpoint_path = out_dir / "last.pt"
    resuming = resume and checkpoint_path.exists()
    # A resumed run takes its weights from the checkpoint, so the starting file may be gone by then.
    init_sha256 = {"init_sha256": load_initial_weights(model, config)} if config.init and not resuming else {}
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = max(1, len(labels) // world // config.batch_size)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    history: list[dict] = []
    if rank == 0:
        atomic_write_text(out_dir / "config.json", json.dumps(asdict(config), indent=2))

    # The moving average of the weights is evaluated beside the weights themselves, and each
    # epoch keeps whichever does better on PublicTest. Its batch-norm statistics are measured
    # afresh on 4,096 training faces each epoch: averaged statistics do not fit averaged
    # weights (on FER2013 they made the average predict a single class).
    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
        bn_batches = batch_norm_batches(images, config.seed, device)

    teacher = Teacher(config.teacher, config.distill_temperature, device, config.teacher_mode) if config.teacher else None
    teachers_sha256 = {"teacher_sha256": teacher.sha256} if teacher is not None else {}

    if resuming:
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        # Options added since the checkpoint was written count as their defaults.
        if {**asdict(TrainConfig()), **state["config"]} != asdict(config):
            raise ValueError(f"{checkpoint_path}: saved with a different config; use a new run folder or drop --resume")
        # Checkpoints from before the fingerprints have none to compare.
        changed = [path for path, digest in state.get("teacher_sha256", {}).items() if teacher.sha256[path] != digest]
        if changed:
            raise ValueError(f"{checkpoint_path}: teacher {', '.join(changed)} has other weights than when the run "
                             "started; put the original file back or use a new run folder")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        init_sha256 = {"init_sha256": state["init_sha256"]} if "init_sha256" in state else {}
        if ema is not None:
            ema.load_state_dict(state["ema"])
    fingerprints = {**teachers_sha256, **init_sha256}  # kept in the card and the checkpoint
    candidates = {"weights": model, **({"ema": ema.module} if ema is not None else {})}
    network = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    # Per epoch, because a resumed run may continue on another machine (speeds differ 2.5x).
    machine = machine_description()
    started = time.perf_counter()
    best_val = max((row["val_accuracy"] for row in history), default=-1.0)
    for epoch in range(len(history), config.epochs):
        start = time.perf_counter()
        train_loss, train_acc = train_one_epoch(
            network, optimizer, scheduler, images, labels, config, epoch, device, progress and rank == 0, rank, world,
            ema, teacher,
        )
        seconds = time.perf_counter() - start
        if rank == 0:
            if ema is not None:
                with autocast(device, config.precision):
                    update_bn(bn_batches, ema.module)
            scores = {
                name: classification_metrics(val_labels, predict_logits(net, val_images, precision=config.precision))
                for name, net in candidates.items()
            }
            chosen = max(scores, key=lambda name: scores[name]["accuracy"])
            val = scores[chosen]
            history.append({
                "epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc,
                "val_loss": val["loss"], "val_accuracy": val["accuracy"], "seconds": seconds,
                "images_per_second": len(labels) / seconds, "machine": machine,
                **({"val_accuracy_weights": scores["weights"]["accuracy"], "val_accuracy_ema": scores["ema"]["accuracy"]}
                   if ema is not None else {}),
            })
            if val["accuracy"] > best_val:
                best_val = val["accuracy"]
                save_weights(candidates[chosen], config, out_dir,
                             {"epoch": epoch + 1, "val_accuracy": best_val, "weights": chosen, **fingerprints})
            _atomic_torch_save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": history, "config": asdict(config), **fingerprints,
                **({"ema": ema.state_dict()} if ema is not None else {}),
            }, checkpoint_path)
            atomic_write_text(out_dir / "history.json", json.dumps(history, indent=2))
            if progress:
                tqdm.write(
                    f"epoch {epoch + 1}/{config.epochs}  train loss {train_loss:.3f} acc {train_acc:.3f}  "
                    f"val loss {val['loss']:.3f} acc {val['accuracy']:.3f}  {seconds:.0f}s"
                )
        if max_minutes is not None:
            stop = torch.tensor([time.perf_counter() - started > 60 * max_minutes])
            if world > 1:
                dist.broadcast(stop, 0)  # rank 0's clock decides, so every rank stops together
            if stop.item():
                break
    if world > 1:
        dist.barrier()
    return {"history": history, "best_val_accuracy": best_val, "finished": len(history) == config.epochs}


def save_weights(model: nn.Module, config: TrainConfig, out_dir: Path, extra: dict) -> None:
    """Best weights as safetensors, with the card that says how to rebuild and feed the model."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out_dir / "best.safetensors") as tmp:
        save_file(tensors, str(tmp))
    card = {
        "model": config.model, "model_options": config.model_options,
        "input": {"size": 48, "channels": 1, "mean": PIXEL_MEAN, "std": PIXEL_STD},
        "train_config": asdict(config), **extra,
    }
    atomic_write_text(out_dir / "model.json", json.dumps(card, indent=2))


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)
