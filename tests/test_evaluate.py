import numpy as np

from ferlab.evaluate import classification_metrics


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
