"""The paper's Table 1 baselines: LDA, QDA and soft-max logistic regression on raw pixels.

Each is a plain scikit-learn Pipeline. QDA needs a covariance shrinkage on 2304-pixel
inputs (the Disgust class has fewer training images than pixels); its amount is chosen
on PublicTest, like every other choice in ferlab.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import FER2013, train_val_test

QDA_SHRINKAGE_GRID = (0.001, 0.01, 0.1)


def baseline_pipelines() -> dict[str, Pipeline]:
    return {
        "LDA": make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()),
        "QDA": make_pipeline(StandardScaler(), QuadraticDiscriminantAnalysis(solver="eigen", shrinkage=0.5)),
        "Logistic regression (soft-max)": make_pipeline(
            StandardScaler(), LogisticRegression(C=1e-3, max_iter=300)
        ),
    }


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255


def fit_baselines(data: FER2013, log=print) -> dict[str, dict]:
    """Fit each baseline on Training; return PublicTest and PrivateTest accuracy and fit time."""
    splits = train_val_test(data)
    x_train, y_train = _flat(splits["Training"][0]), splits["Training"][1]
    x_val, y_val = _flat(splits["PublicTest"][0]), splits["PublicTest"][1]
    x_test, y_test = _flat(splits["PrivateTest"][0]), splits["PrivateTest"][1]
    results = {}
    for name, pipeline in baseline_pipelines().items():
        start = time.perf_counter()
        extra = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # collinear pixels and lbfgs iteration notes
            if name == "QDA":
                scores = {}
                for shrinkage in QDA_SHRINKAGE_GRID:
                    pipeline.set_params(quadraticdiscriminantanalysis__shrinkage=shrinkage)
                    scores[shrinkage] = pipeline.fit(x_train, y_train).score(x_val, y_val)
                best = max(scores, key=scores.get)
                pipeline.set_params(quadraticdiscriminantanalysis__shrinkage=best)
                extra = {"shrinkage": best, "shrinkage_val_accuracy": {str(k): v for k, v in scores.items()}}
            pipeline.fit(x_train, y_train)
            results[name] = {
                "val_accuracy": float(pipeline.score(x_val, y_val)),
                "test_accuracy": float(pipeline.score(x_test, y_test)),
                "fit_seconds": time.perf_counter() - start,
                **extra,
            }
        log(f"{name}: val {results[name]['val_accuracy']:.3f} test {results[name]['test_accuracy']:.3f}")
    return results
