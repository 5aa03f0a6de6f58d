"""How far can the probabilities ferlab prints be trusted? Calibration on FER2013.

For each model and test-time augmentation: accuracy, the mean probability of the top label
(confidence), the expected calibration error (ECE, 15 bins; `ferlab.metrics.calibration_error`)
and the negative log-likelihood, on PublicTest and PrivateTest. Then temperature scaling
(Guo et al. 2017): one more temperature fitted on PublicTest by likelihood, applied to the
log probabilities, scored on PrivateTest (about 1 once the model's card carries its own).
Last, a reliability table: PrivateTest faces binned by confidence, without TTA.

    python benchmarks/calibration.py --data ../shared/data/fer2013.csv.gz [--models default fast]
"""

from __future__ import annotations

import argparse

import numpy as np

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.hardware import machine_description
from ferlab.metrics import classification_metrics, fit_temperature
from ferlab.tta import TTA_VIEWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", default=["default", "fast"], help="bundled names or run folders")
    args = parser.parse_args()
    splits = train_val_test(load_fer2013(args.data))
    print(f"{machine_description()}; temperature fitted on PublicTest")
    print("| model | TTA | split | accuracy | confidence | ECE | NLL | temperature | ECE after | NLL after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    reliability = {}
    for name in args.models:
        for tta in TTA_VIEWS:
            model = load_model(name, tta=tta)
            log_p = {s: np.log(np.maximum(model.predict_proba(splits[s][0]), 1e-12)) for s in ("PublicTest", "PrivateTest")}
            temperature = fit_temperature(log_p["PublicTest"], splits["PublicTest"][1])
            for split, lp in log_p.items():
                labels = splits[split][1]
                plain, scaled = classification_metrics(labels, lp), classification_metrics(labels, lp / temperature)
                print(f"| {name} | {tta} | {split} | {plain['accuracy']:.2%} | {np.exp(lp).max(1).mean():.3f} "
                      f"| {plain['calibration_error']:.2%} | {plain['loss']:.4f} | {temperature:.3f} "
                      f"| {scaled['calibration_error']:.2%} | {scaled['loss']:.4f} |")
            if tta == "none":
                reliability[name] = np.exp(log_p["PrivateTest"])
    labels = splits["PrivateTest"][1]
    print("\nPrivateTest, no TTA: faces binned by the top label's probability")
    print("| model | confidence | faces | mean confidence | accuracy |")
    print("|---|---|---|---|---|")
    for name, probabilities in reliability.items():
        confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
        for low in np.arange(0.0, 1.0, 0.2):
            inside = (confidence > low) & (confidence <= low + 0.2)
            if inside.any():
                print(f"| {name} | {low:.1f}-{low + 0.2:.1f} | {inside.sum()} | {confidence[inside].mean():.3f} "
                      f"| {correct[inside].mean():.2%} |")


if __name__ == "__main__":
    main()
