"""Print one Markdown row of reports/experiments.md per run folder, from the files the run wrote.

    python scripts/experiment_rows.py runs/fast-paper-cnn runs/reproduce/models/paper_cnn ...
"""

import json
import sys
from pathlib import Path


def row(run: Path) -> str:
    config = json.loads((run / "config.json").read_text())
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    command = (run / "command.txt").read_text().strip() if (run / "command.txt").exists() else f"(see {run})"
    options = json.dumps(config["model_options"]) if config["model_options"] else ""
    minutes = sum(r["seconds"] for r in history) / 60
    return (f"| `{command}` | {config['model']} {options} | {len(history)} | {minutes:.1f} min | CPU-2 | "
            f"{100 * metrics['val']['accuracy']:.2f}% | {100 * metrics['test']['accuracy']:.2f}% | "
            f"{100 * metrics['test_deduplicated']['accuracy']:.2f}% |")


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(row(Path(folder)))
