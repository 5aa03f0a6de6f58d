"""Model soups (Wortsman et al. 2022): one network whose weights are the uniform average of
several fine-tunes of the same trained start, for part of an ensemble's gain at the cost of
one model. Fine-tunes of one start stay in one basin of the loss, where averaging works;
networks trained from different random weights do not, so every ingredient must name the
same ``--init`` weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import update_bn

from .atomic import atomic_write, atomic_write_text
from .data import FER2013, file_sha256, train_val_test
from .evaluate import autocast, pick_device
from .models import create_model, load_trained, weights_file
from .train import batch_norm_batches


def check_ingredients(run_dirs: list[str | Path]) -> dict:
    """Check that ``run_dirs`` can be averaged, before any data is read, and return the
    first run's card: at least two runs, one architecture, one ``--init`` start."""
    if len(run_dirs) < 2:
        raise ValueError("soup: give at least two fine-tuned runs to average")
    cards = [load_trained(path)[1] for path in run_dirs]  # checks each file and card
    first = cards[0]
    for path, card in zip(run_dirs, cards, strict=True):
        if (card["model"], card.get("model_options", {})) != (first["model"], first.get("model_options", {})):
            raise ValueError(f"soup: {path} is a {card['model']} with options {card.get('model_options', {})}, "
                             f"not a {first['model']} with {first.get('model_options', {})} as {run_dirs[0]}")
        if "init_sha256" not in card or card["init_sha256"] != first.get("init_sha256"):
            raise ValueError(f"soup: {path} was not fine-tuned (ferlab train --init) from the same weights as "
                             f"{run_dirs[0]}; only fine-tunes of one start can be averaged")
    return first


def make_soup(run_dirs: list[str | Path], data: FER2013, out_dir: str | Path, seed: int = 0) -> Path:
    """Average the best weights of ``run_dirs`` into ``out_dir`` (``best.safetensors`` and
    ``model.json``, like a training run) and return ``out_dir``. Batch-norm statistics are
    measured afresh on training faces: averaged statistics do not fit averaged weights."""
    first = check_ingredients(run_dirs)
    states = [load_file(str(weights_file(path))) for path in run_dirs]
    averaged = {
        name: torch.stack([state[name].float() for state in states]).mean(0).to(tensor.dtype)
        if tensor.is_floating_point() else tensor
        for name, tensor in states[0].items()
    }
    model = create_model(first["model"], **first.get("model_options", {}))
    model.load_state_dict(averaged)
    device = pick_device()
    images = torch.from_numpy(train_val_test(data)["Training"][0]).unsqueeze(1)
    model = model.to(device, memory_format=torch.channels_last)
    with autocast(device):
        update_bn(batch_norm_batches(images, seed, device), model)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "best.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    card = {
        "model": first["model"], "model_options": first.get("model_options", {}), "input": first["input"],
        "epoch": None,  # no epoch of its own: each ingredient is its run's best PublicTest epoch
        "init_sha256": first["init_sha256"],
        "soup_of": {str(path): file_sha256(weights_file(path)) for path in run_dirs},
    }
    atomic_write_text(out_dir / "model.json", json.dumps(card, indent=2))
    return out_dir
