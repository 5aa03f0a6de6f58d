"""`TrainConfig`: every setting of a training run, as one plain dataclass.

`ferlab train` has one flag per field (`ferlab.cli`), a run folder's ``config.json`` holds
one, and `ferlab.train.train` takes one. It lives apart from the training loop so that
reading it (for the command line's help, for instance) needs no PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def option(default, help: str, choices: tuple[str, ...] | None = None):
    """A `TrainConfig` field with the help text and choices that `ferlab train --help` shows."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    model: str = option("paper_cnn", "architecture from the model registry (ferlab.models)")
    model_options: dict = field(default_factory=dict)
    epochs: int = option(30, "passes over the Training split")
    batch_size: int = option(128, "faces per optimizer step")
    optimizer: str = option("adam", "sgd uses Nesterov momentum 0.9", ("adam", "adamw", "sgd"))
    lr: float = option(1e-3, "peak learning rate")
    beta1: float = option(0.9, "Adam/AdamW first-moment decay (SGD: unused)")
    beta2: float = option(0.999, "Adam/AdamW second-moment decay (SGD: unused)")
    weight_decay: float = option(0.0, "L2 penalty (decoupled for adamw)")
    schedule: str = option("constant", "learning-rate schedule over the epochs", ("constant", "cosine", "onecycle"))
    label_smoothing: float = option(0.0, "share of each target spread evenly over the 7 classes")
    augment: str = option("light", "light: flips and shifts; strong: also rotations, scaling, random erasing",
                          ("none", "light", "strong"))
    degrade: float = option(
        0.0,
        "share of training faces also spoiled as dim light and poor cameras spoil faces: blurred, flatter, darker or "
        "brighter, noisy, each by a random amount (the teachers, if any, see them unspoiled)",
    )
    mix: str = option("none", "blend pairs of training faces and their labels", ("none", "mixup", "cutmix"))
    mix_prob: float = option(0.5, "share of batches that are mixed")
    mix_alpha: float = option(1.0, "Beta(alpha, alpha) draws the mixing weight")
    ema_decay: float = option(0.0, "above 0: evaluate and keep an exponential moving average of the weights")
    init: str = option(
        "",
        "fine-tuning: start from these trained weights (run folder, .safetensors or a bundled model's name, such "
        "as default) of the same architecture and weight shapes, not from random ones; without --model, the "
        "architecture and model options are the start's",
    )
    teacher: str = option(
        "", "knowledge distillation: comma-separated trained models (run folders, .safetensors or bundled names)"
    )
    teacher_mode: str = option(
        "average",
        "average: every teacher sees every face; split: each face of a batch goes to one teacher in turn, "
        "for the cost of one teacher and the same targets on average",
        ("average", "split"),
    )
    distill_weight: float = option(0.5, "share of the loss that matches the teachers' softened probabilities")
    distill_temperature: float = option(2.0, "softens the teachers' and the student's probabilities")
    sam_rho: float = option(
        0.0,
        "above 0: sharpness-aware minimization (Foret et al. 2021): each step takes its gradient at the weights "
        "moved this far up the slope, for a second forward and backward pass of the student per step",
    )
    max_train: int | None = option(None, "train on a random subset of this many faces (search, smoke tests)")
    seed: int = option(0, "seeds the weights, the augmentation and the batch order")
    device: str = option("auto", "auto: CUDA when present, else cpu; or cpu, cuda, cuda:1, ...")
    precision: str = option("auto", "auto: bf16 where the hardware runs it natively", ("auto", "bf16", "fp32"))

    def __post_init__(self) -> None:
        # Checked here, before any data is read or a run folder written: a typo in a long
        # run's command should fail at once, not after the first epoch.
        for f in fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"unknown {f.name} {getattr(self, f.name)!r}; use one of {', '.join(allowed)}")
        rules = [  # (fields, test, what a valid value is)
            (("epochs",), lambda v: v >= 1, "at least 1"),
            (("batch_size",), lambda v: v >= 2, "at least 2 (batch norm needs two faces)"),
            (("lr", "mix_alpha", "distill_temperature"), lambda v: v > 0, "above 0"),
            (("weight_decay", "sam_rho"), lambda v: v >= 0, "0 or more"),
            (("beta1", "beta2", "label_smoothing", "ema_decay"), lambda v: 0 <= v < 1, "in [0, 1)"),
            (("mix_prob", "distill_weight", "degrade"), lambda v: 0 <= v <= 1, "in [0, 1]"),
        ]
        for names, valid, wording in rules:
            for name in names:
                if not valid(getattr(self, name)):
                    raise ValueError(f"{name} must be {wording}, not {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)
