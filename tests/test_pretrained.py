"""The bundled models: they load offline by name, the default finds and reads the bundled
photo, and each card's PrivateTest accuracy is what its model really scores."""

import json

import numpy as np
import pytest
from PIL import Image

import ferlab
from ferlab.classifier import bundled_models, bundled_path
from ferlab.data import train_val_test
from ferlab.predict import Analyzer

from .conftest import face_in_shadow

pytestmark = pytest.mark.skipif(not bundled_path().exists(), reason="no bundled model yet")


@pytest.mark.parametrize("name", bundled_models())
def test_bundled_model_and_card(name):
    model = ferlab.load_model(name)
    card = json.loads(bundled_path(name).with_suffix(".json").read_text())
    assert model.card == card and card["name"] == name
    assert set(card["accuracy"]) == {"PublicTest", "PrivateTest", "PrivateTest_without_training_duplicates"}
    assert card["training_command"].startswith("ferlab ")
    assert bundled_path(name).stat().st_size < 8 * 1024 * 1024
    assert bundled_path(name).with_suffix(".md").exists()


def test_default_and_fast_are_bundled_and_unknown_names_are_listed():
    assert {"default", "fast"} <= set(bundled_models())
    assert ferlab.load_model().card == ferlab.load_model("default").card
    with pytest.raises(FileNotFoundError, match="bundled model's name .*default.*fast"):
        ferlab.load_model("fastest")


def test_analyze_the_bundled_photo(astronaut):
    records = ferlab.analyze(astronaut)
    assert len(records) == 1
    assert records[0]["label"] == "Happy"  # she is smiling


def test_robust_reads_a_face_in_deep_shadow_as_in_full_light(astronaut):
    photo = np.asarray(Image.open(astronaut).convert("RGB"))
    shadowed = face_in_shadow(photo, 0.1)
    # Each face as it is: the shadow reaches the network, which takes it away by itself.
    robust = Analyzer(ferlab.load_model("robust"), auto_levels=False)
    (bright,), (dark,) = robust.analyze(photo), robust.analyze(shadowed)
    assert bright["label"] == dark["label"] == "Happy"
    for label, probability in bright["probabilities"].items():
        assert abs(dark["probabilities"][label] - probability) < 0.02


@pytest.mark.real_data
@pytest.mark.parametrize("name", bundled_models())
def test_card_accuracy_is_what_the_model_scores(real_fer2013, name):
    images, labels = train_val_test(real_fer2013)["PrivateTest"]
    accuracy = float((ferlab.load_model(name).predict(images) == labels).mean())
    card = json.loads(bundled_path(name).with_suffix(".json").read_text())
    assert abs(accuracy - card["accuracy"]["PrivateTest"]) < 0.005
    assert np.isfinite(accuracy)
    shifted = float((ferlab.load_model(name, tta="shift").predict(images) == labels).mean())
    assert abs(shifted - card["accuracy_with_tta"]["shift"]["PrivateTest"]) < 0.005
