"""The metrics the paper reports, computed from any classifier's logits.

NumPy and SciPy only: the install without PyTorch evaluates ONNX models with them too.
A classifier enters as a ``logits_of(faces, tta)`` function: uint8 faces (N, 48, 48) and a
TTA mode in, logits (N, 7) out (`ferlab.evaluate.torch_logits` for PyTorch networks,
`ferlab.classifier.onnx_logits` for ONNX Runtime).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from scipy import special

from .data import EMOTIONS, FER2013, split_rows, train_val_test, training_duplicates_mask
from .tta import AUGMENTED_TTA_MODES

LogitsOf = Callable[[np.ndarray, str], np.ndarray]

# The paper's suggested regroupings (Section 5): attitude, and anger merged with disgust.
ATTITUDE = {"positive": (3,), "negative": (0, 1, 2, 4), "neutral": (5, 6)}
ATTITUDE_OF_LABEL = np.array([next(i for i, g in enumerate(ATTITUDE.values()) if c in g) for c in range(7)])
MERGE_ANGER_DISGUST = np.array([0, 0, 1, 2, 3, 4, 5])


def remembered(logits_of: LogitsOf) -> LogitsOf:
    """``logits_of`` that runs the classifier once per set of faces and TTA mode, and answers
    a repeated call from memory: packaging a model scores the same splits for its accuracy
    and for its calibration."""
    memory: dict[tuple, np.ndarray] = {}

    def logits_once(faces: np.ndarray, tta: str) -> np.ndarray:
        faces = np.ascontiguousarray(faces)
        key = (hashlib.blake2b(faces.data, digest_size=16).digest(), faces.shape, tta)
        if key not in memory:
            memory[key] = logits_of(faces, tta)
        return memory[key]

    return logits_once


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log soft-max in float64, stable for huge logits."""
    return special.log_softmax(np.asarray(logits, dtype=np.float64), axis=1)


def negative_log_likelihood(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean cross-entropy of ``labels`` under the soft-max of ``logits``."""
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean()) if len(labels) else 0.0


def calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): how far the top label's probability is
    from how often that label is right, averaged over ``bins`` equal-width bins of that
    probability, weighted by their share of faces. 0 is perfectly calibrated."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if not len(labels):
        return 0.0
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # bin i holds (i/bins, (i+1)/bins]
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
            for b in range(bins) if (which == b).any()]
    return float(sum(gaps))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The soft-max temperature that makes ``logits`` (or log-probabilities) most likely for
    ``labels`` (temperature scaling, Guo et al. 2017): fitted on PublicTest, it calibrates the
    probabilities without changing any prediction."""
    from scipy.optimize import minimize_scalar

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    fitted = minimize_scalar(lambda temperature: negative_log_likelihood(labels, logits / temperature),
                             bounds=(0.05, 20.0), method="bounded")
    return float(fitted.x)


def accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(1) == labels).mean()) if len(labels) else 0.0


def interval95(share: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion: ``share`` right of ``n`` faces (an
    accuracy, a class's recall). For 71% of FER2013's 3,589 test faces it spans about 3 points,
    so that gaps of a few tenths between models are chance; for Disgust's 55, about 25."""
    if n <= 0:
        return (0.0, 1.0)
    z = 1.959963984540054  # the 97.5th percentile of the normal distribution
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(centre - half, 0.0)), float(min(centre + half, 1.0)))


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict:
    """Accuracy (with its 95% interval), loss, calibration, per-class recall, confusion
    matrices and the paper's regroupings."""
    labels, logits = np.asarray(labels), np.asarray(logits)
    predicted = logits.argmax(1)
    confusion = np.zeros((7, 7), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    row_sums = confusion.sum(1, keepdims=True)
    normalized = np.divide(confusion, row_sums, out=np.zeros((7, 7)), where=row_sums > 0)
    right = accuracy(labels, logits)
    return {
        "n": int(len(labels)),
        "accuracy": right,
        "accuracy_ci95": interval95(right, len(labels)),
        "loss": negative_log_likelihood(labels, logits),
        "calibration_error": calibration_error(labels, np.exp(log_softmax(logits))),
        "recall": {EMOTIONS[c]: float(normalized[c, c]) for c in range(7)},
        "confusion": confusion.tolist(),
        "confusion_normalized": normalized.round(4).tolist(),
        "true_counts": np.bincount(labels, minlength=7).tolist(),
        "predicted_counts": np.bincount(predicted, minlength=7).tolist(),
        "attitude_accuracy": float((ATTITUDE_OF_LABEL[predicted] == ATTITUDE_OF_LABEL[labels]).mean()),
        "anger_disgust_merged_accuracy": float(
            (MERGE_ANGER_DISGUST[predicted] == MERGE_ANGER_DISGUST[labels]).mean()
        ),
    }


def paired_comparison(labels: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray) -> dict:
    """Two classifiers' labels for the same faces: how many faces only A gets right, how many
    only B, and the two-sided p-value of McNemar's exact test that both are equally accurate
    (faces both get right or both miss say nothing about which is better)."""
    from scipy.stats import binomtest

    labels = np.asarray(labels)
    right_a, right_b = np.asarray(predicted_a) == labels, np.asarray(predicted_b) == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    accuracy_a, accuracy_b = (float(right.mean()) if len(labels) else 0.0 for right in (right_a, right_b))
    return {
        "n": int(len(labels)),
        "accuracy_a": accuracy_a,
        "accuracy_a_ci95": interval95(accuracy_a, len(labels)),
        "accuracy_b": accuracy_b,
        "accuracy_b_ci95": interval95(accuracy_b, len(labels)),
        "only_a_right": only_a,
        "only_b_right": only_b,
        "p_value": float(binomtest(only_a, only_a + only_b).pvalue) if only_a + only_b else 1.0,
    }


def compare_on_fer2013(predict_a: Callable[[np.ndarray], np.ndarray], predict_b: Callable[[np.ndarray], np.ndarray],
                       data: FER2013) -> dict:
    """`paired_comparison` of two classifiers (``predict``: uint8 faces (N, 48, 48) in, labels
    out) on PublicTest, where a choice between them is made, and on PrivateTest, full and without
    its copies of Training faces, which are shown, not chosen on."""
    splits = train_val_test(data)
    result = {}
    for split in ("PublicTest", "PrivateTest"):
        faces, labels = splits[split]
        predicted_a, predicted_b = predict_a(faces), predict_b(faces)
        result[split] = paired_comparison(labels, predicted_a, predicted_b)
        if split == "PrivateTest" and len(labels):
            unseen = ~training_duplicates_mask(data, "PrivateTest")
            result["PrivateTest_deduplicated"] = paired_comparison(labels[unseen], predicted_a[unseen],
                                                                   predicted_b[unseen])
    return result


PREDICTION_HEADER = ["split", "row", "label", "predicted", "also_in_training", *EMOTIONS]


def prediction_rows(predict_proba: Callable[[np.ndarray], np.ndarray], data: FER2013) -> list[list]:
    """A row for each PublicTest and PrivateTest face (`PREDICTION_HEADER`): its split, its row
    in the data file (from 0), its true label and the one ``predict_proba`` (uint8 faces in,
    seven probabilities out) gives it, whether the same image is also in Training (1 or 0),
    and its seven probabilities: for error analysis and statistics of one's own."""
    table = []
    for split, rows in split_rows(data).items():
        if split == "Training":
            continue
        probabilities = predict_proba(data.images[rows])
        copies = training_duplicates_mask(data, split)
        table += [[split, int(row), EMOTIONS[data.labels[row]], EMOTIONS[int(p.argmax())], int(copy),
                   *(round(float(x), 6) for x in p)] for row, p, copy in zip(rows, probabilities, copies, strict=True)]
    return table


def evaluate_predictions(logits_of: LogitsOf, data: FER2013) -> dict:
    """A classifier's metrics on PublicTest and PrivateTest (full, and without the PrivateTest
    faces that also appear in Training), with the accuracy of each TTA mode."""
    splits = train_val_test(data)
    val_images, val_labels = splits["PublicTest"]
    test_images, test_labels = splits["PrivateTest"]
    test_logits = logits_of(test_images, "none")
    unseen = ~training_duplicates_mask(data, "PrivateTest") if len(test_labels) else np.zeros(0, bool)
    return {
        "val": classification_metrics(val_labels, logits_of(val_images, "none")),
        "test": classification_metrics(test_labels, test_logits),
        "test_deduplicated": classification_metrics(test_labels[unseen], test_logits[unseen]),
        **{
            f"{split}_{tta}_tta_accuracy": accuracy(labels, logits_of(images, tta))
            for tta in AUGMENTED_TTA_MODES
            for split, images, labels in (("val", val_images, val_labels), ("test", test_images, test_labels))
        },
        "test_predicted": test_logits.argmax(1).tolist(),
    }


def select_ensemble(probabilities: np.ndarray, labels: np.ndarray, steps: int) -> list[np.ndarray]:
    """Greedy ensemble selection (Caruana et al. 2004) from a library of models: at each step,
    add (with replacement, so a model can weigh double) the model whose addition gives the
    mean probabilities the highest accuracy on ``labels``, ties broken by the lower negative
    log-likelihood, since accuracy moves in whole faces. ``probabilities``: (models, faces, 7).
    Returns how many times each model is in the ensemble after each step; choose among them
    on the same split (PublicTest) and report another (PrivateTest)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    counts, total, chosen = np.zeros(len(probabilities), int), np.zeros(probabilities.shape[1:]), []
    for step in range(1, steps + 1):
        means = (total + probabilities) / step  # every candidate's addition at once
        right = (means.argmax(2) == labels).mean(1)
        nll = -np.log(np.maximum(means[:, np.arange(len(labels)), labels], np.finfo(np.float64).tiny)).mean(1)
        best = max(range(len(probabilities)), key=lambda m: (right[m], -nll[m]))
        counts[best] += 1
        total += probabilities[best]
        chosen.append(counts.copy())
    return chosen


def ensemble_probabilities(members: list[LogitsOf], faces: np.ndarray, tta: str = "none") -> np.ndarray:
    """The mean soft-max of several classifiers (each averaged over the ``tta`` views)."""
    return sum(np.exp(log_softmax(logits_of(faces, tta))) for logits_of in members) / len(members)


def evaluate_ensemble(members: list[LogitsOf], data: FER2013, tta: str = "none") -> dict:
    """Accuracy of the mean soft-max of several classifiers (each averaged over the ``tta``
    views), with its 95% interval, on PublicTest and PrivateTest (and PrivateTest without the
    faces that also appear in Training)."""
    splits = train_val_test(data)
    result = {}

    def scored(key: str, labels: np.ndarray, probabilities: np.ndarray) -> None:
        result[key] = accuracy(labels, probabilities)
        result[f"{key}_ci95"] = interval95(result[key], len(labels))

    for name, key in (("PublicTest", "val_accuracy"), ("PrivateTest", "test_accuracy")):
        images, labels = splits[name]
        mean_probabilities = ensemble_probabilities(members, images, tta)
        scored(key, labels, mean_probabilities)
        if name == "PrivateTest" and len(labels):
            unseen = ~training_duplicates_mask(data, "PrivateTest")
            scored("test_deduplicated_accuracy", labels[unseen], mean_probabilities[unseen])
    return result
