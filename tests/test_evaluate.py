import numpy as np
import pytest
import torch
from torch import nn

from ferlab.evaluate import calibration_error, classification_metrics, predict_logits


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


def test_tta_averages_logits_over_views():
    class LeftRightSum(nn.Module):
        """Logits that see only which half of the face is brighter, so a mirror cancels them."""

        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            left, right = x[..., :24].mean((1, 2, 3)), x[..., 24:].mean((1, 2, 3))
            return torch.stack([left - right] + [torch.zeros_like(left)] * 6, 1)

    faces = np.zeros((3, 48, 48), np.uint8)
    faces[:, :, :24] = 200
    plain = predict_logits(LeftRightSum(), faces, precision="fp32")
    assert (plain[:, 0] > 0).all()
    np.testing.assert_allclose(predict_logits(LeftRightSum(), faces, precision="fp32", tta="flip"), 0, atol=1e-6)
