import json

from ferlab.reproduce import PAPER_MODELS, ReproduceConfig, reproduce


def test_reproduce_writes_every_table_and_figure_and_resumes(tiny_csv, tmp_path):
    config = ReproduceConfig(epochs=1, search_trials=1, search_epochs=1, search_train_images=70)
    out = tmp_path / "run"
    metrics = reproduce(tiny_csv, out, config, log=lambda *_: None, progress=False)
    assert set(metrics) == set(PAPER_MODELS)
    for name in PAPER_MODELS:
        assert 0 <= metrics[name]["test"]["accuracy"] <= 1
        assert metrics[name]["trainable_parameters"] > 0
    assert {p.name for p in (out / "figures").iterdir()} == {
        "fig1_examples.png", "fig3_accuracy.png", "fig4_loss.png",
        "fig5_labels.png", "fig6_confusion.png", "fig7_examples.png",
    }
    markdown = (out / "report.md").read_text()
    for expected in ("Table 1", "LDA", "QDA", "58.6%", "Ablation: no dropout", "Per-class recall",
                     "attitude", "trainable parameters", "without Training duplicates"):
        assert expected in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "<table>" in page

    # A second invocation finds every stage done and redoes none of them.
    before = (out / "baselines.json").stat().st_mtime_ns
    logged = []
    reproduce(tiny_csv, out, config, log=logged.append, progress=False)
    assert (out / "baselines.json").stat().st_mtime_ns == before
    assert "[skip] baselines.json already done" in logged
    assert json.loads((out / "search.json").read_text())["trials"]
