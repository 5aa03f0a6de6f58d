"""Print one Markdown row of reports/experiments.md per run folder, from the files the run wrote.

    python scripts/experiment_rows.py [--machine CPU-2e] runs/fast-paper-cnn runs/reproduce/models/paper_cnn ...

The machine labels are defined at the top of reports/experiments.md (default CPU-2).
"""

import argparse
import json
from pathlib import Path


def row(run: Path, machine: str = "CPU-2") -> str:
    config = json.loads((run / "config.json").read_text())
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    command = (run / "command.txt").read_text().strip() if (run / "command.txt").exists() else f"(see {run})"
    options = json.dumps(config["model_options"]) if config["model_options"] else ""
    minutes = sum(r["seconds"] for r in history) / 60
    return (f"| `{command}` | {config['model']} {options} | {len(history)} | {minutes:.1f} min | {machine} | "
            f"{100 * metrics['val']['accuracy']:.2f}% | {100 * metrics['test']['accuracy']:.2f}% | "
            f"{100 * metrics['test_deduplicated']['accuracy']:.2f}% |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="CPU-2", help="machine label of reports/experiments.md")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    args = parser.parse_args()
    for folder in args.runs:
        print(row(folder, args.machine))
