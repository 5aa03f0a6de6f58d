import json

import pytest

from ferlab.cli import main

TINY = ["--epochs", "2", "--batch-size", "32", "--model-option", "hidden=16", "--model-option", "widths=[8,16,16]",
        "--model-option", "convs_per_block=1"]


@pytest.fixture
def trained_run(tiny_csv, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_csv), "--out", str(run), *TINY]) == 0
    capsys.readouterr()
    return run


def test_report_of_a_trained_run_has_its_figures_and_tables(trained_run, tiny_csv, capsys):
    assert main(["report", str(trained_run), "--data", str(tiny_csv), "--explain"]) == 0
    assert "report.md" in capsys.readouterr().out
    metrics = json.loads((trained_run / "metrics.json").read_text())
    markdown = (trained_run / "report.md").read_text()
    assert f"| PrivateTest (test) | 70 | {100 * metrics['test']['accuracy']:.2f}% |" in markdown
    for expected in ("Trained by:", "Per-class recall", "attitude", f"| {metrics['best_epoch']} / 2 |", "Occlusion maps",
                     "Normalized confusion matrix"):
        assert expected in markdown
    figures = {path.name for path in (trained_run / "figures").glob("*.png")}
    assert figures == {"accuracy.png", "loss.png", "labels.png", "confusion.png", "examples.png",
                       "saliency_by_class.png", "deletion.png"}
    assert (trained_run / "report.html").read_text().count("data:image/png;base64,") == 7


def test_report_measures_a_run_without_metrics_and_says_what_it_needs(trained_run, tiny_csv, tmp_path, capsys):
    kept = json.loads((trained_run / "metrics.json").read_text())
    (trained_run / "metrics.json").unlink()
    assert main(["report", str(trained_run), "--data", str(tiny_csv)]) == 0
    assert json.loads((trained_run / "metrics.json").read_text())["test"] == kept["test"]
    assert "Occlusion maps" not in (trained_run / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", str(trained_run)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--data", str(tiny_csv)]) == 2
    assert "no best.safetensors" in capsys.readouterr().err
