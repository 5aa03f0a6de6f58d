"""`ferlab report RUN_DIR`: report.md and a self-contained report.html from a reproduce run."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..data import EMOTIONS, FER2013, train_val_test
from ..hardware import machine_description
from . import figures

# Numbers printed in the paper (Lin & Shi), for side-by-side tables.
PAPER_BASELINES = {
    "LDA": (0.345, 0.351),
    "QDA": (0.327, 0.329),
    "Logistic regression (soft-max)": (0.352, 0.351),
}
PAPER_CNN = {"paper_cnn": (0.576, 0.586), "paper_cnn_no_bn": (None, 0.556), "paper_cnn_no_dropout": (None, 0.51)}
PAPER_RECALL = {"Angry": 0.49, "Disgust": 0.24, "Fear": 0.37, "Happy": 0.86, "Sad": 0.32, "Surprise": 0.76, "Neutral": 0.63}
MODEL_TITLES = {
    "paper_cnn": "Paper CNN (batch norm + dropout)",
    "paper_cnn_no_bn": "Ablation: no batch norm",
    "paper_cnn_no_dropout": "Ablation: no dropout",
}


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def build_report(run_dir: str | Path, data: FER2013) -> dict[str, Path]:
    """Write figures, report.md and report.html for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    stats = json.loads((run_dir / "stats.json").read_text())
    baselines = json.loads((run_dir / "baselines.json").read_text())
    search = json.loads((run_dir / "search.json").read_text())
    metrics = {
        d.name: json.loads((d / "metrics.json").read_text())
        for d in sorted((run_dir / "models").iterdir())
        if (d / "metrics.json").exists()
    }
    histories = {d: json.loads((run_dir / "models" / d / "history.json").read_text()) for d in metrics}
    main = metrics.get("paper_cnn") or next(iter(metrics.values()))
    test_images, test_labels = train_val_test(data)["PrivateTest"]
    predicted = np.asarray(main["test_predicted"])

    train_images, train_labels = data.split("Training")
    figs = {
        "Fig. 1 Example faces per expression (Training)": figures.example_faces(
            train_images, train_labels, fig_dir / "fig1_examples.png"),
        "Fig. 3 Train and validation accuracy per epoch": figures.curves(
            {MODEL_TITLES.get(k, k): v for k, v in histories.items()}, "accuracy", fig_dir / "fig3_accuracy.png"),
        "Fig. 4 Train and validation loss per epoch": figures.curves(
            {MODEL_TITLES.get(k, k): v for k, v in histories.items()}, "loss", fig_dir / "fig4_loss.png"),
        "Fig. 5 True and predicted label distribution (PrivateTest)": figures.label_distribution(
            main["test"]["true_counts"], main["test"]["predicted_counts"], fig_dir / "fig5_labels.png"),
        "Fig. 6 Normalized confusion matrix (PrivateTest)": figures.confusion_matrix(
            main["test"]["confusion_normalized"], fig_dir / "fig6_confusion.png"),
        "Fig. 7 Example faces by true (rows) and predicted (columns) label": figures.confusion_examples(
            test_images, test_labels, predicted, fig_dir / "fig7_examples.png"),
    }

    lines = ["# FER2013 reproduction report", ""]
    lines += [f"Run folder `{run_dir}`; data `{json.loads((run_dir / 'run.json').read_text())['data']}`; "
              f"machine: {machine_description()}.", ""]
    lines += ["## Data", "", "| split | rows | " + " | ".join(EMOTIONS) + " |", "|---" * 9 + "|"]
    for split, counts in stats["counts"].items():
        lines.append(f"| {split} | {sum(counts.values())} | " + " | ".join(str(counts[e]) for e in EMOTIONS) + " |")
    lines += ["", f"{stats['distinct_images']} distinct images; {stats['duplicate_groups']} groups of identical "
              f"images ({stats['duplicate_rows']} rows), {stats['duplicate_groups_across_splits']} of them across "
              f"splits, {stats['duplicate_groups_with_conflicting_labels']} with conflicting labels; "
              f"{len(stats['constant_images'])} constant (blank) images.", ""]

    lines += ["## Table 1: baselines and CNNs", "",
              "| classifier | val (ours) | test (ours) | val (paper) | test (paper) |", "|---|---|---|---|---|",
              "| random guess | 14.3% | 14.3% | 14.3% | 14.3% |"]
    for name, result in baselines.items():
        paper_val, paper_test = PAPER_BASELINES.get(name, (None, None))
        lines.append(f"| {name} | {percent(result['val_accuracy'])} | {percent(result['test_accuracy'])} | "
                     f"{percent(paper_val)} | {percent(paper_test)} |")
    for name, m in metrics.items():
        paper_val, paper_test = PAPER_CNN.get(name, (None, None))
        lines.append(f"| {MODEL_TITLES.get(name, name)} | {percent(m['val']['accuracy'])} | "
                     f"{percent(m['test']['accuracy'])} | {percent(paper_val)} | {percent(paper_test)} |")
    lines += ["", "Validation is PublicTest, test is PrivateTest. Every choice (search, best epoch, QDA "
              "shrinkage) was made on PublicTest.", ""]

    lines += ["## CNN models: ablation, size and speed", "",
              "| model | test | test without Training duplicates | best epoch / epochs | trainable parameters "
              "| median s/epoch | median train images/s |",
              "|---|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {MODEL_TITLES.get(name, name)} | {percent(m['test']['accuracy'])} | "
                     f"{percent(m['test_deduplicated']['accuracy'])} (n={m['test_deduplicated']['n']}) | "
                     f"{m['best_epoch']} / {m['epochs']} | {m['trainable_parameters']:,} | "
                     f"{m['seconds_per_epoch']:.1f} | {m['train_images_per_second']:.0f} |")
    lines += ["", "The paper reports about 200 s per epoch for its model (its hardware is not stated).", ""]

    lines += ["## Per-class recall (PrivateTest)", "", "| class | ours | paper |", "|---|---|---|"]
    for e in EMOTIONS:
        lines.append(f"| {e} | {percent(main['test']['recall'][e])} | {percent(PAPER_RECALL[e])} |")
    lines += ["", "## The paper's suggested regroupings (PrivateTest)", "",
              "| grouping | accuracy |", "|---|---|",
              f"| 7 classes | {percent(main['test']['accuracy'])} |",
              f"| attitude: positive (Happy) / negative (Angry, Disgust, Fear, Sad) / neutral (Surprise, Neutral) | "
              f"{percent(main['test']['attitude_accuracy'])} |",
              f"| Angry and Disgust merged (6 classes) | {percent(main['test']['anger_disgust_merged_accuracy'])} |", ""]

    lines += ["## Hyper-parameter search", "", f"Best PublicTest accuracy {percent(search['best_value'])} with "
              f"`{json.dumps(search['best_params'])}`.", "", "| trial | val accuracy | parameters |", "|---|---|---|"]
    for trial in search["trials"]:
        params = {k: v for k, v in trial.items() if k not in ("number", "value", "state")}
        lines.append(f"| {trial['number']} | {percent(trial['value'])} | `{json.dumps(params)}` |")
    lines.append("")

    for title, path in figs.items():
        lines += [f"## {title}", "", f"![{title}](figures/{path.name})", ""]

    markdown = "\n".join(lines)
    md_path = atomic_write_text(run_dir / "report.md", markdown)
    html_path = atomic_write_text(run_dir / "report.html",
                                  markdown_to_html(markdown, fig_dir, "FER2013 reproduction report"))
    return {"markdown": md_path, "html": html_path, "figures": fig_dir}


def markdown_to_html(markdown: str, fig_dir: Path, title: str) -> str:
    """Just enough Markdown (headings, tables, images, paragraphs) for this report,
    with figures inlined as base64 so the file stands alone."""
    body, table = [], []

    def flush_table() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[html.escape(c.strip()) for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rest}</tbody></table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if image := re.match(r"!\[(.*)\]\(figures/(.*)\)", line):
            data = base64.b64encode((fig_dir / image.group(2)).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(image.group(1))}" src="data:image/png;base64,{data}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.strip():
            text = re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(line))
            body.append(f"<p>{text}</p>")
    flush_table()
    style = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
             "img{max-width:100%}code{background:#f4f4f4}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
