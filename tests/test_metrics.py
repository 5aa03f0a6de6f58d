import numpy as np
import pytest

from ferlab.data import load_fer2013, train_val_test
from ferlab.metrics import (
    calibration_error,
    classification_metrics,
    evaluate_ensemble,
    evaluate_predictions,
    fit_temperature,
    interval95,
    log_softmax,
    negative_log_likelihood,
    paired_comparison,
    remembered,
    select_ensemble,
)


def test_metrics_on_hand_made_predictions():
    labels = np.array([0, 0, 1, 3, 3, 6])
    predicted = np.array([0, 1, 0, 3, 5, 6])
    logits = np.eye(7, dtype=np.float32)[predicted] * 5
    m = classification_metrics(labels, logits)
    assert m["accuracy"] == 3 / 6
    assert m["recall"]["Angry"] == 0.5 and m["recall"]["Disgust"] == 0.0 and m["recall"]["Happy"] == 0.5
    assert m["confusion"][0] == [1, 1, 0, 0, 0, 0, 0]
    assert m["true_counts"] == [2, 1, 0, 2, 0, 0, 1]
    assert m["predicted_counts"] == [2, 1, 0, 1, 0, 1, 1]
    # anger/disgust merged: the two swaps between Angry and Disgust become right
    assert m["anger_disgust_merged_accuracy"] == 5 / 6
    # attitude: Happy->Surprise is positive->neutral (wrong); Angry<->Disgust stay negative
    assert m["attitude_accuracy"] == 5 / 6
    assert m["loss"] > 0


def test_calibration_error():
    labels = np.array([0, 0, 0, 0, 1, 1])
    # Four faces said Angry at 0.9 (three right) and two said Disgust at 0.6 (both right):
    # gaps |0.75 - 0.9| over 4/6 of the faces and |1 - 0.6| over 2/6.
    probabilities = np.full((6, 7), 0.1 / 6)
    probabilities[:4, 0], probabilities[4:, 1] = 0.9, 0.6
    probabilities[4:, [0, 2, 3, 4, 5, 6]] = 0.4 / 6
    labels[3] = 2
    assert calibration_error(labels, probabilities) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.4)
    right = np.eye(7)[labels]  # certain and right: no gap
    assert calibration_error(labels, right) == 0
    assert calibration_error(np.zeros(0, int), np.zeros((0, 7))) == 0
    m = classification_metrics(labels, np.log(probabilities))
    assert m["calibration_error"] == pytest.approx(calibration_error(labels, probabilities))


def test_loss_is_the_mean_cross_entropy_and_survives_huge_logits():
    logits = np.random.default_rng(0).normal(0, 5, (20, 7))
    labels = np.arange(20) % 7
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = -np.log(probabilities[np.arange(20), labels]).mean()
    assert negative_log_likelihood(labels, logits) == pytest.approx(expected)
    assert np.isfinite(log_softmax(np.array([[1e4, 0, 0, 0, 0, 0, -1e4]]))).all()
    assert negative_log_likelihood(np.zeros(0, int), np.zeros((0, 7))) == 0


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (4000, 7))
    probabilities = np.exp(log_softmax(logits / 2.5))
    labels = np.array([rng.choice(7, p=p) for p in probabilities])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.1)


def test_evaluate_predictions_and_ensembles_from_any_logits_function(tiny_csv):
    data = load_fer2013(tiny_csv)
    splits = train_val_test(data)
    val_labels, test_labels = splits["PublicTest"][1], splits["PrivateTest"][1]
    assert len(val_labels) == len(test_labels)  # one answer serves both splits below
    right = np.eye(7)[test_labels] * 4
    wrong = np.eye(7)[(test_labels + 1) % 7] * 4
    metrics = evaluate_predictions(lambda faces, tta: right, data)
    assert metrics["test"]["accuracy"] == 1 and metrics["test_shift_tta_accuracy"] == 1
    assert metrics["test_predicted"] == test_labels.tolist()
    # Two members: the mean soft-max follows the more confident one.
    confident_right, unsure_wrong = right * 2, wrong / 2
    result = evaluate_ensemble([lambda f, t: confident_right, lambda f, t: unsure_wrong], data)
    assert result["test_accuracy"] == 1 and result["test_deduplicated_accuracy"] == 1
    assert result["test_accuracy_ci95"] == interval95(1.0, len(data.split("PrivateTest")[1]))
    assert evaluate_ensemble([lambda f, t: wrong], data)["test_accuracy"] == 0




def test_remembered_runs_the_classifier_once_per_faces_and_tta_mode():
    calls = []

    def logits_of(faces, tta):
        calls.append(tta)
        return np.full((len(faces), 7), float(faces.sum()))

    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    once = remembered(logits_of)
    first = once(faces, "none")
    assert once(faces.copy(), "none") is first and calls == ["none"]  # equal faces, not only the same array
    once(faces, "flip")
    once(faces[:3], "none")
    other = faces.copy()
    other[0, 0, 0] ^= 1
    once(other, "none")
    assert calls == ["none", "flip", "none", "none"]


def test_paired_comparison_counts_the_faces_that_tell_two_classifiers_apart():
    labels = np.zeros(100, int)
    a = np.where(np.arange(100) < 60, 0, 1)  # right on faces 0-59
    b = np.where((np.arange(100) >= 10) & (np.arange(100) < 65), 0, 1)  # right on faces 10-64
    result = paired_comparison(labels, a, b)
    assert (result["only_a_right"], result["only_b_right"]) == (10, 5)
    assert (result["accuracy_a"], result["accuracy_b"]) == (0.60, 0.55)
    assert result["p_value"] == pytest.approx(0.3018, abs=1e-4)  # 2 * P(Binomial(15, 1/2) <= 5)
    assert paired_comparison(labels, a, a)["p_value"] == 1.0
    lopsided = paired_comparison(labels, np.zeros(100, int), np.ones(100, int))
    assert lopsided["only_a_right"] == 100 and lopsided["p_value"] < 1e-20


def test_the_95_percent_interval_of_an_accuracy():
    assert interval95(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # Wilson's score interval
    low, high = interval95(0.7141, 3589)  # the default's PrivateTest accuracy: about 1.5 points either side
    assert high - low == pytest.approx(0.0295, abs=5e-4) and low < 0.7141 < high
    assert interval95(0.0, 55)[0] == 0.0 and interval95(1.0, 55)[1] == 1.0 and interval95(0.5, 0) == (0.0, 1.0)
    logits = np.eye(7)[[0, 1, 2, 3]]
    metrics = classification_metrics(np.array([0, 1, 2, 0]), logits)
    assert metrics["accuracy"] == 0.75 and metrics["accuracy_ci95"] == interval95(0.75, 4)


def test_ensemble_selection_takes_the_models_that_help_and_can_take_one_twice():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 400)
    truth = np.eye(7)[labels]

    def model(right_fraction, seed):
        noise = np.random.default_rng(seed).dirichlet(np.ones(7), len(labels))
        keep = np.random.default_rng(seed + 100).random(len(labels)) < right_fraction
        return np.where(keep[:, None], 0.6 * truth + 0.4 * noise, noise)

    library = np.stack([model(0.3, 1), model(0.8, 2), model(0.1, 3), model(0.7, 4)])
    chosen = select_ensemble(library, labels, steps=6)
    assert len(chosen) == 6 and [c.sum() for c in chosen] == list(range(1, 7))
    assert chosen[0].tolist() == [0, 1, 0, 0]  # the best single model first
    accuracies = [((c @ library.reshape(4, -1)).reshape(-1, 7).argmax(1) == labels).mean() for c in chosen]
    best = chosen[int(np.argmax(accuracies))]
    assert best[1] and best[3] and not best[2]  # the two good models together, not the useless one
    assert max(accuracies) > accuracies[0]
    assert max(c[1] for c in chosen) >= 2  # with replacement
