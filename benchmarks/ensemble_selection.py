"""Which trained models make the best ensemble? Greedy selection on PublicTest, scored on PrivateTest.

Every candidate labels PublicTest and PrivateTest once (with the ``--tta`` views, computed as
`ferlab evaluate` computes them); `ferlab.metrics.select_ensemble` then adds, step by step,
the model that most raises the ensemble's PublicTest accuracy, with replacement. The step
kept is the one with the best PublicTest accuracy (ties: lower PublicTest loss), so every
choice is made on PublicTest; PrivateTest is shown, never used. The equal-weight mean of all
candidates is printed beside it.

    python benchmarks/ensemble_selection.py reports/runs/* --data ../shared/data/fer2013.csv.gz --tta flip
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ferlab.data import load_fer2013, train_val_test, training_duplicates_mask
from ferlab.evaluate import trained_logits
from ferlab.hardware import machine_description
from ferlab.metrics import accuracy, log_softmax, select_ensemble
from ferlab.tta import TTA_VIEWS

SPLITS = ("PublicTest", "PrivateTest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="run folders or .safetensors files (with their cards)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--tta", default="flip", choices=list(TTA_VIEWS))
    parser.add_argument("--steps", type=int, default=20, help="models added, counting repeats")
    args = parser.parse_args()
    data = load_fer2013(args.data)
    splits = train_val_test(data)
    unseen = ~training_duplicates_mask(data, "PrivateTest")
    names = [Path(model).name for model in args.models]
    probabilities = {split: [] for split in SPLITS}  # split -> one (faces, 7) array per model
    for model_path in args.models:
        logits_of = trained_logits(model_path)  # what `ferlab evaluate` averages
        for split in SPLITS:
            probabilities[split].append(np.exp(log_softmax(logits_of(splits[split][0], args.tta))))
    library = {split: np.stack(probabilities[split]) for split in SPLITS}
    labels = {split: splits[split][1] for split in SPLITS}

    def scores(weights: np.ndarray) -> tuple[float, float, float, float]:
        """PublicTest accuracy and loss, PrivateTest accuracy, de-duplicated PrivateTest accuracy."""
        mean = {split: np.tensordot(weights / weights.sum(), library[split], 1) for split in SPLITS}
        public_nll = -np.log(mean["PublicTest"][np.arange(len(labels["PublicTest"])), labels["PublicTest"]]).mean()
        private, private_labels = mean["PrivateTest"], labels["PrivateTest"]
        return (accuracy(labels["PublicTest"], mean["PublicTest"]), public_nll,
                accuracy(private_labels, private), accuracy(private_labels[unseen], private[unseen]))

    print(f"{machine_description()}; {len(names)} candidates, TTA {args.tta}")
    print("| step | ensemble (model x times) | PublicTest | PublicTest loss | PrivateTest | PrivateTest dedup. |")
    print("|---|---|---|---|---|---|")
    chosen = select_ensemble(library["PublicTest"], labels["PublicTest"], args.steps)
    results = [scores(counts.astype(float)) for counts in chosen]
    for step, (counts, result) in enumerate(zip(chosen, results, strict=True), 1):
        print(f"| {step} | {describe(names, counts)} | " + " | ".join(format_scores(result)) + " |")
    kept = max(range(len(chosen)), key=lambda i: (results[i][0], -results[i][1]))
    print(f"\nkept (best PublicTest): step {kept + 1}, {describe(names, chosen[kept])}: {summary(results[kept])}")
    print(f"all candidates, equal weights: {summary(scores(np.ones(len(names))))}")


def describe(names: list[str], counts: np.ndarray) -> str:
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in zip(names, counts, strict=True) if count)


def summary(result: tuple[float, float, float, float]) -> str:
    named = zip(("PublicTest", "loss", "PrivateTest", "dedup."), format_scores(result), strict=True)
    return ", ".join(f"{name} {value}" for name, value in named)


def format_scores(result: tuple[float, float, float, float]) -> list[str]:
    public, loss, private, dedup = result
    return [f"{public:.2%}", f"{loss:.4f}", f"{private:.2%}", f"{dedup:.2%}"]


if __name__ == "__main__":
    main()
