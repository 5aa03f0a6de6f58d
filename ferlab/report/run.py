"""`ferlab report RUN_DIR --data FILE` for a `ferlab train` run: the paper's figures and tables
for any model trained here, in report.md and a self-contained report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..data import EMOTIONS, FER2013, train_val_test
from ..evaluate import write_metrics
from ..hardware import machine_description
from ..metrics import interval95
from . import figures
from .build import markdown_to_html, percent


def pct(value: float | None) -> str:
    return percent(value, digits=2)  # a few faces in 3,589 move a run's accuracy by a hundredth of a point


def interval(share: float, n: int) -> str:
    low, high = interval95(share, n)
    return f"{100 * low:.1f}-{100 * high:.1f}%"


def build_run_report(run_dir: str | Path, data: FER2013, explain: bool = False) -> dict[str, Path]:
    """Write figures, report.md and report.html for the trained run in ``run_dir``. Its
    metrics are those `ferlab train` kept (metrics.json), measured again on ``data`` where
    they are missing. ``explain``: also the occlusion maps of every PrivateTest face
    (`ferlab.explain.explain_split`; minutes): where each expression's evidence lies."""
    run_dir = Path(run_dir)
    if not (run_dir / "best.safetensors").exists():
        raise FileNotFoundError(f"{run_dir}: no best.safetensors; give a `ferlab train` run folder "
                                "(or a `ferlab reproduce` folder, which has run.json)")
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else write_metrics(run_dir, data)
    history_path = run_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    command_path = run_dir / "command.txt"
    test, fig_dir = metrics["test"], run_dir / "figures"
    test_images, test_labels = train_val_test(data)["PrivateTest"]
    predicted = np.asarray(metrics["test_predicted"])
    if len(predicted) != len(test_labels):
        raise ValueError(f"{run_dir}/metrics.json was measured on {len(predicted)} PrivateTest faces, and this data "
                         f"file has {len(test_labels)}: give the file the run was trained on, or delete metrics.json "
                         "to measure it again on this one")

    figs = {}
    if history:
        figs["Train and validation accuracy per epoch"] = figures.curves(
            {run_dir.name: history}, "accuracy", fig_dir / "accuracy.png")
        figs["Train and validation loss per epoch"] = figures.curves({run_dir.name: history}, "loss", fig_dir / "loss.png")
    figs["True and predicted label distribution (PrivateTest)"] = figures.label_distribution(
        test["true_counts"], test["predicted_counts"], fig_dir / "labels.png")
    figs["Normalized confusion matrix (PrivateTest)"] = figures.confusion_matrix(
        test["confusion_normalized"], fig_dir / "confusion.png")
    figs["Example faces by true (rows) and predicted (columns) label (PrivateTest)"] = figures.confusion_examples(
        test_images, test_labels, predicted, fig_dir / "examples.png")
    explained = _explain(run_dir, test_images, test_labels, fig_dir) if explain else None
    if explained:
        figs["Where each expression's evidence lies: mean occlusion map of the faces got right (PrivateTest)"] = (
            fig_dir / "saliency_by_class.png")
        figs["Accuracy as the pixels each face's map ranks highest are hidden (PrivateTest)"] = fig_dir / "deletion.png"

    lines = [f"# Report: {run_dir.name}", ""]
    if command_path.exists():
        lines += ["Trained by:", "", f"`{command_path.read_text().strip()}`", ""]
    lines += [f"Model `{metrics['model']}`; report written on: {machine_description()}.", ""]
    lines += ["## Accuracy", "", "| split | faces | accuracy | 95% interval | with flip TTA | with shift TTA |",
              "|---|---|---|---|---|---|",
              f"| PublicTest (validation: the best epoch was chosen on it) | {metrics['val']['n']} | "
              f"{pct(metrics['val']['accuracy'])} | {interval(metrics['val']['accuracy'], metrics['val']['n'])} | "
              f"{pct(metrics.get('val_flip_tta_accuracy'))} | {pct(metrics.get('val_shift_tta_accuracy'))} |",
              f"| PrivateTest (test) | {test['n']} | {pct(test['accuracy'])} | {interval(test['accuracy'], test['n'])} | "
              f"{pct(metrics.get('test_flip_tta_accuracy'))} | {pct(metrics.get('test_shift_tta_accuracy'))} |",
              f"| PrivateTest without its copies of Training faces | {metrics['test_deduplicated']['n']} | "
              f"{pct(metrics['test_deduplicated']['accuracy'])} | "
              f"{interval(metrics['test_deduplicated']['accuracy'], metrics['test_deduplicated']['n'])} | | |", "",
              "The 95% intervals (Wilson) say how far chance alone moves a score on that many faces: "
              "models whose intervals overlap much may not differ (`ferlab evaluate A --compare B` tests it "
              "on the same faces).", ""]
    speed = (f"{metrics['seconds_per_epoch']:.1f} | {metrics['train_images_per_second']:.0f}"
             if "seconds_per_epoch" in metrics else "n/a | n/a")  # a soup has no history
    lines += ["## Training", "", "| best epoch / epochs | trainable parameters | median s/epoch | median train images/s |",
              "|---|---|---|---|",
              f"| {metrics['best_epoch']} / {metrics.get('epochs', 'n/a')} | {metrics['trainable_parameters']:,} "
              f"| {speed} |",
              "", "Seconds per epoch are those of the machine that trained the run.", ""]
    lines += ["## Per-class recall (PrivateTest)", "", "| class | recall | 95% interval | faces |", "|---|---|---|---|"]
    lines += [f"| {e} | {pct(test['recall'][e])} | {interval(test['recall'][e], test['true_counts'][i])} | "
              f"{test['true_counts'][i]} |" for i, e in enumerate(EMOTIONS)]
    lines += ["", "## Regroupings (PrivateTest)", "", "| grouping | accuracy |", "|---|---|",
              f"| 7 classes | {pct(test['accuracy'])} |",
              f"| attitude: positive / negative / neutral | {pct(test['attitude_accuracy'])} |",
              f"| Angry and Disgust merged | {pct(test['anger_disgust_merged_accuracy'])} |", ""]
    if explained:
        curve = explained["deletion"]
        at = curve["fractions"].index(0.05)
        lines += ["## Occlusion maps", "", f"A {explained['patch']}-pixel patch hid each part of each face in turn "
                  f"(`ferlab explain`). Hiding the 5% of each face's pixels its map ranks highest takes accuracy from "
                  f"{pct(curve['salient'][0])} to {pct(curve['salient'][at])}, against {pct(curve['another_face'][at])} "
                  f"when another face's map ranks them and {pct(curve['random_patches'][at])} for random patches. "
                  "(With nothing hidden, accuracy is that of ferlab's inference path, which folds batch norm into "
                  "the convolutions and may differ from the table above by a face or two.)", ""]
    for title, path in figs.items():
        lines += [f"## {title}", "", f"![{title}](figures/{path.name})", ""]

    markdown = "\n".join(lines)
    md_path = atomic_write_text(run_dir / "report.md", markdown)
    html_path = atomic_write_text(run_dir / "report.html", markdown_to_html(markdown, fig_dir, f"Report: {run_dir.name}"))
    return {"markdown": md_path, "html": html_path, "figures": fig_dir}


def _explain(run_dir: Path, faces: np.ndarray, labels: np.ndarray, fig_dir: Path) -> dict:
    from ..classifier import load_model
    from ..explain import explain_split

    return explain_split(load_model(run_dir, backend="torch"), faces, labels, fig_dir)
