import json
import shutil

import pytest
from PIL import Image

from ferlab.classifier import load_model
from ferlab.cli import main
from ferlab.photo_accuracy import labelled_photos, photo_accuracy
from ferlab.predict import Analyzer


def labelled_folder(root, astronaut):
    """happy/: the portrait twice; Surprised/: the portrait and a blank; sad/: a broken file."""
    for folder in ("happy", "Surprised", "sad"):
        (root / folder).mkdir(parents=True)
    shutil.copy(astronaut, root / "happy" / "a.jpg")
    shutil.copy(astronaut, root / "happy" / "b.jpg")
    shutil.copy(astronaut, root / "Surprised" / "c.jpg")
    Image.new("RGB", (200, 150), "white").save(root / "Surprised" / "blank.png")
    (root / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "notes.txt").write_text("a file beside the sub-folders is left alone")
    return root


def test_accuracy_counts_photos_without_a_face_as_wrong_and_reports_the_unreadable(astronaut, tiny_model, tmp_path):
    root = labelled_folder(tmp_path / "photos", astronaut)
    assert [(p.name, label) for p, label in labelled_photos(root)] == [
        ("blank.png", 5), ("c.jpg", 5), ("a.jpg", 3), ("b.jpg", 3), ("broken.jpg", 4)]
    analyzer = Analyzer(load_model(tiny_model))
    result = photo_accuracy(root, analyzer, progress=False)
    assert result["photos"] == 5 and result["photos_per_label"]["Happy"] == 2
    assert [r["path"].rsplit("/", 1)[1] for r in result["unreadable"]] == ["broken.jpg"]
    assert [p.rsplit("/", 1)[1] for p in result["without_a_face"]] == ["blank.png"]
    found = result["where_a_face_was_found"]
    assert found["n"] == 3 and found["true_counts"] == [0, 0, 0, 2, 0, 1, 0]
    label = analyzer.analyze(astronaut)[0]["label"]  # the same face three times: one label
    right = {"Happy": 2, "Surprise": 1}.get(label, 0)
    assert result["accuracy_where_a_face_was_found"] == pytest.approx(right / 3)
    assert result["accuracy_of_all_readable_photos"] == pytest.approx(right / 4)  # the blank counts as wrong
    low, high = result["accuracy_of_all_readable_photos_ci95"]  # four photos say little
    assert low <= right / 4 <= high and high - low > 0.4


def test_folders_must_be_named_after_expressions(tmp_path):
    (tmp_path / "joyful").mkdir()
    with pytest.raises(ValueError, match="joyful: not an expression's name; name sub-folders angry, disgust"):
        labelled_photos(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        labelled_photos(tmp_path / "none")
    (tmp_path / "joyful").rmdir()
    (tmp_path / "happy").mkdir()
    with pytest.raises(ValueError, match="no photos in sub-folders"):
        labelled_photos(tmp_path)


def test_photo_accuracy_command_writes_json_and_confusion_matrix(astronaut, tiny_model, tmp_path, capsys):
    root = labelled_folder(tmp_path / "photos", astronaut)
    out, figure = tmp_path / "accuracy.json", tmp_path / "confusion.png"
    assert main(["photo-accuracy", str(root), "--model", str(tiny_model), "--out", str(out), "--confusion",
                 str(figure), "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and printed["photos"] == 5
    assert figure.stat().st_size > 0
    assert main(["photo-accuracy", str(tmp_path / "none"), "--quiet"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_the_gallery_says_each_photos_expected_label(astronaut, tmp_path, capsys):
    import re

    for folder in ("happy", "sad"):
        (tmp_path / "photos" / folder).mkdir(parents=True)
        shutil.copy(astronaut, tmp_path / "photos" / folder / f"{folder}.jpg")
    Image.new("RGB", (200, 200), 128).save(tmp_path / "photos" / "sad" / "grey.png")
    gallery = tmp_path / "mistakes.html"
    assert main(["photo-accuracy", str(tmp_path / "photos"), "--quiet", "--html", str(gallery)]) == 0
    data = re.search(r'<script id="ferlab-photos" type="application/json">(.*?)</script>', gallery.read_text()).group(1)
    photos = {photo["name"]: photo for photo in json.loads(data)}
    assert {name: photo["expected"] for name, photo in photos.items()} == {
        "happy.jpg": "Happy", "sad.jpg": "Sad", "grey.png": "Sad"}
    assert [face["label"] for face in photos["sad.jpg"]["faces"]] == ["Happy"]  # the bundled model sees a smile
    assert json.loads(capsys.readouterr().out)["accuracy_of_all_readable_photos"] == pytest.approx(1 / 3)
