from ferlab.baselines import fit_baselines
from ferlab.data import load_fer2013


def test_baselines_beat_chance_on_learnable_data(tiny_csv):
    results = fit_baselines(load_fer2013(tiny_csv), log=lambda *_: None)
    assert set(results) == {"LDA", "QDA", "Logistic regression (soft-max)"}
    for result in results.values():
        assert result["test_accuracy"] > 0.5 and result["fit_seconds"] > 0
    assert "shrinkage" in results["QDA"]
