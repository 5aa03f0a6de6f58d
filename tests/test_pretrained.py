"""The bundled default model: it loads offline, finds and reads the bundled photo, and its
card's PrivateTest accuracy is what the model really scores."""

import json

import numpy as np
import pytest

import ferlab
from ferlab.classifier import bundled_path
from ferlab.data import train_val_test

pytestmark = pytest.mark.skipif(not bundled_path().exists(), reason="no bundled model yet")


def test_bundled_model_and_card():
    model = ferlab.load_model()
    card = json.loads(bundled_path().with_suffix(".json").read_text())
    assert model.card == card
    assert set(card["accuracy"]) == {"PublicTest", "PrivateTest", "PrivateTest_without_training_duplicates"}
    assert card["training_command"].startswith("ferlab ")
    assert bundled_path().stat().st_size < 8 * 1024 * 1024
    assert bundled_path().with_suffix(".md").exists()


def test_analyze_the_bundled_photo(astronaut):
    records = ferlab.analyze(astronaut)
    assert len(records) == 1
    assert records[0]["label"] == "Happy"  # she is smiling


@pytest.mark.real_data
def test_card_accuracy_is_what_the_model_scores(real_fer2013):
    images, labels = train_val_test(real_fer2013)["PrivateTest"]
    accuracy = float((ferlab.load_model().predict(images) == labels).mean())
    card = json.loads(bundled_path().with_suffix(".json").read_text())
    assert abs(accuracy - card["accuracy"]["PrivateTest"]) < 0.005
    assert np.isfinite(accuracy)
    shifted = float((ferlab.load_model(tta="shift").predict(images) == labels).mean())
    assert abs(shifted - card["accuracy_with_tta"]["shift"]["PrivateTest"]) < 0.005
