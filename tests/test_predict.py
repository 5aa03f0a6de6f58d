import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS
from ferlab.exposure import STRETCH_BELOW, grey_span
from ferlab.predict import Analyzer, output_names, predict_files, write_results

from .conftest import ASTRONAUT_FACE, face_in_shadow


def test_analyze_returns_json_safe_records(astronaut, tiny_model):
    analyzer = Analyzer(load_model(tiny_model))
    records = analyzer.analyze(astronaut)
    assert len(records) == 1
    record = json.loads(json.dumps(records[0]))
    assert record == records[0]
    assert set(record["probabilities"]) == set(EMOTIONS)
    assert abs(sum(record["probabilities"].values()) - 1) < 0.01
    assert record["label"] in EMOTIONS and abs(record["box"][0] - ASTRONAUT_FACE[0]) < 20
    assert set(record["landmarks"]) >= {"left_eye", "right_eye"}  # the default detector, BlazeFace, gives them
    assert analyzer.analyze(np.full((100, 100, 3), 200, np.uint8)) == []


def test_a_photo_in_three_percent_of_the_light_is_read_as_in_full_light(astronaut):
    photo = np.asarray(Image.open(astronaut).convert("RGB"))
    dark = np.round(photo * 0.03).astype(np.uint8)  # grey levels 0-8
    analyzer = Analyzer()
    (bright,), (seen,) = analyzer.analyze(photo), analyzer.analyze(dark)
    assert seen["label"] == bright["label"] == "Happy" and abs(seen["confidence"] - bright["confidence"]) < 0.05
    assert abs(seen["box"][0] - bright["box"][0]) < 10
    assert Analyzer(auto_levels=False).analyze(dark) == []  # the picture as it is: no face to be seen


def test_a_face_in_deep_shadow_in_a_bright_photo_is_read_as_in_full_light(astronaut):
    photo = np.asarray(Image.open(astronaut).convert("RGB"))
    shadowed = face_in_shadow(photo, 0.1)
    (bright,), (seen,) = Analyzer().analyze(photo), Analyzer().analyze(shadowed)
    assert seen["label"] == bright["label"] == "Happy" and abs(seen["confidence"] - bright["confidence"]) < 0.05
    _, crops = Analyzer(auto_levels=False).photo_faces(shadowed)
    low, high = grey_span(crops[0])
    assert high - low < STRETCH_BELOW  # what the model would have seen without auto levels: a flat, dark face


def test_frames_of_a_source_of_ones_own_keep_their_tracks(astronaut, tiny_model):
    import ferlab
    from ferlab.imageio import load_image

    analyzer, tracks = Analyzer(load_model(tiny_model)), ferlab.SmoothedTracks(smooth_s=0)
    rgb = load_image(astronaut)
    first, then = analyzer.analyze_frame(rgb, tracks, 0.0), analyzer.analyze_frame(rgb[:, ::-1], tracks, 0.04)
    assert first[0]["track"] == then[0]["track"] == 0  # the mirrored face is still where it was
    assert {key: value for key, value in first[0].items() if key != "track"} == analyzer.analyze(rgb)[0]


def test_big_video_frames_are_searched_whole_every_so_often_and_around_tracked_faces_between(astronaut, tiny_model):
    import cv2

    import ferlab
    from ferlab.imageio import load_image
    from ferlab.predict import FULL_SEARCH_S

    tile = cv2.resize(load_image(astronaut)[30:210, 130:310], (125, 125), interpolation=cv2.INTER_AREA)  # faces 64 px
    first = np.full((720, 1280, 3), 110, np.uint8)
    first[100:225, 100:225] = tile
    then = first.copy()
    then[500:625, 1000:1125] = tile  # a second face comes in: too small for the whole frame at the model's size
    analyzer, tracks = Analyzer(load_model(tiny_model)), ferlab.SmoothedTracks(smooth_s=0)
    assert [r["track"] for r in analyzer.analyze_frame(first, tracks, 0.0)] == [0]
    assert [r["track"] for r in analyzer.analyze_frame(then, tracks, FULL_SEARCH_S / 2)] == [0]  # around face 0 only
    assert sorted(r["track"] for r in analyzer.analyze_frame(then, tracks, FULL_SEARCH_S)) == [0, 1]  # whole again


def test_faces_too_small_for_their_crop_are_classified_with_their_mirror_image(tiny_model):
    from ferlab.detect import Face

    model = load_model(tiny_model)
    crops = np.random.default_rng(4).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    # BlazeFace's margin adds 15% a side: a 36-pixel box gives a 46.8-pixel crop, enlarged; 37, 48.1
    faces = [Face((0, 0, 36, 36), 1.0), Face((50, 0, 37, 37), 1.0), Face((100, 0, 200, 20), 1.0)]
    analyzer = Analyzer(model)
    probabilities = analyzer.classify(faces, crops)
    small = [0, 2]
    np.testing.assert_allclose(probabilities[small], model.predict_proba(crops[small], tta="flip"), atol=1e-6)
    np.testing.assert_allclose(probabilities[1], model.predict_proba(crops[1:2])[0], atol=1e-6)
    assert not np.allclose(probabilities[small], model.predict_proba(crops[small]), atol=1e-4)
    np.testing.assert_allclose(Analyzer(model, small_face_tta=None).classify(faces, crops), model.predict_proba(crops),
                               atol=1e-6)
    shifted = load_model(tiny_model, tta="shift")  # more views than flip: every face gets the model's own
    np.testing.assert_allclose(Analyzer(shifted).classify(faces, crops), shifted.predict_proba(crops), atol=1e-6)
    whole = Analyzer(model, cropped=True).classify([Face((0, 0, 47, 60), 1.0)], crops[:1])  # a crop file under 48
    np.testing.assert_allclose(whole, model.predict_proba(crops[:1], tta="flip"), atol=1e-6)


def test_analyze_takes_a_model_by_name_or_loaded(astronaut, tiny_model):
    from ferlab import predict

    default = predict.analyze(astronaut)
    ensemble = predict.analyze(astronaut, model="default+fast")
    assert predict._last_analyzer[0] == ("default+fast", "blazeface")  # loaded once, reused
    assert ensemble[0]["box"] == default[0]["box"]
    fast = predict.analyze(astronaut, model="fast")[0]["probabilities"]
    mean = {e: (default[0]["probabilities"][e] + fast[e]) / 2 for e in EMOTIONS}
    assert ensemble[0]["probabilities"] == pytest.approx(mean, abs=2e-4)  # records round to 4 places
    (crop,) = predict.analyze(np.full((30, 40, 3), 99, np.uint8), model="fast", cropped=True)  # the whole image
    assert crop["box"] == [0, 0, 40, 30] and predict._last_analyzer[1].cropped is False  # the cached one is left as it was
    loaded = predict.analyze(astronaut, model=load_model(tiny_model), detector="hog")
    assert len(loaded) == 1 and predict._last_analyzer[0] == ("fast", "blazeface")  # the cache is left alone


def test_folder_with_good_bad_and_faceless_images(astronaut, tiny_model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(astronaut, folder / "a.jpg")
    Image.new("RGB", (80, 60), "white").save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    annotated = tmp_path / "annotated"
    results = list(predict_files([str(folder)], Analyzer(load_model(tiny_model)), annotated, progress=False))
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in results}
    assert set(by_name) == {"a.jpg", "blank.png", "broken.jpg"}
    assert len(by_name["a.jpg"]["faces"]) == 1 and by_name["blank.png"]["faces"] == []
    assert "not an image file" in by_name["broken.jpg"]["error"]
    assert sorted(p.name for p in annotated.iterdir()) == ["a.annotated.jpg", "blank.annotated.jpg"]
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # named as such: a video
    [video] = predict_files([str(tmp_path / "clip.mp4")], Analyzer(load_model(tiny_model)), progress=False)
    assert video["error"].endswith("it looks like a video: analyze it with ferlab video")

    out = tmp_path / "faces.csv"
    count, failed = write_results(iter(results), out, "csv")
    assert count == 3 and len(failed) == 1
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["path"].endswith("a.jpg") and set(EMOTIONS) <= rows[0].keys()


def test_output_names_keep_photos_of_one_name_apart(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    paths = [Path("cards/2023/IMG_0001.JPG"), Path("cards/2024/IMG_0001.JPG"), Path("cards/2024/IMG_0002.jpg"),
             Path("cards/2024/IMG_0002.png"), Path("cards/a.jpg")]
    assert list(output_names(paths).values()) == ["2023/IMG_0001", "2024/IMG_0001", "IMG_0002.jpg", "IMG_0002.png", "a"]
    assert output_names([Path("x/photo.jpg")]) == {Path("x/photo.jpg"): "photo"}  # one photo: its own name
    elsewhere = [tmp_path / "p.jpg", Path("/somewhere/else/q.jpg")]
    assert list(output_names(elsewhere).values()) == ["p", "q"]  # names alone, wherever the photos are
    assert output_names([Path("a.jpg"), Path("a.jpg")]) == {Path("a.jpg"): "a"}  # the same photo twice: one name

    def different_drives(paths):  # as os.path.commonpath fails on Windows for C:\\... and D:\\...
        raise ValueError("Paths don't have the same drive")

    monkeypatch.setattr("ferlab.predict.os.path.commonpath", different_drives)
    names = output_names([Path("/media/card/IMG_0001.JPG"), Path("/home/me/IMG_0001.JPG"), Path("b.jpg")])
    assert list(names.values()) == ["media/card/IMG_0001", "home/me/IMG_0001", "b"]  # each its whole path


def test_annotated_photos_and_face_crops_of_one_name_in_two_folders_are_both_kept(astronaut, tiny_model, tmp_path):
    from ferlab.photo_accuracy import photo_accuracy

    for folder in ("2023", "2024"):
        (tmp_path / "cards" / folder).mkdir(parents=True)
    shutil.copy(astronaut, tmp_path / "cards" / "2023" / "IMG_0001.jpg")
    Image.open(astronaut).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "cards" / "2024" / "IMG_0001.jpg")
    analyzer = Analyzer(load_model(tiny_model))
    annotated, crops = tmp_path / "annotated", tmp_path / "crops"
    results = list(predict_files([str(tmp_path / "cards")], analyzer, annotated, progress=False, crops_dir=crops))
    assert sorted(str(p.relative_to(annotated)) for p in annotated.rglob("*.jpg")) == [
        "2023/IMG_0001.annotated.jpg", "2024/IMG_0001.annotated.jpg"]
    labels = [r["faces"][0]["label"].lower() for r in results]
    assert sorted(str(p.relative_to(crops)) for p in crops.rglob("*.png")) == sorted(
        f"{label}/{year}/IMG_0001.face0.png" for label, year in zip(labels, ("2023", "2024"), strict=True))
    crop = crops / labels[0] / "2023" / "IMG_0001.face0.png"
    assert Image.open(crop).mode == "L" and Image.open(crop).size == (48, 48)
    # The crops are what the model saw: classified whole, they are given the labels of their folders.
    measured = photo_accuracy(crops, Analyzer(analyzer.model, cropped=True), progress=False)
    assert measured["accuracy_of_all_readable_photos"] == 1.0 and measured["photos"] == 2


def test_folders_take_phone_formats_too(astronaut, tiny_model, tmp_path):
    pytest.importorskip("pillow_heif").register_heif_opener()
    Image.open(astronaut).save(tmp_path / "IMG_0001.HEIC", "HEIF")
    Image.open(astronaut).save(tmp_path / "b.avif", "AVIF")
    results = list(predict_files([str(tmp_path)], Analyzer(load_model(tiny_model)), progress=False))
    assert [(r["path"].rsplit("/", 1)[1], len(r["faces"])) for r in results] == [("IMG_0001.HEIC", 1), ("b.avif", 1)]


def test_face_crops_are_classified_whole_when_told_so(tiny_model, tmp_path):
    from ferlab.data import load_fer2013

    from .conftest import write_tiny_csv

    faces = load_fer2013(write_tiny_csv(tmp_path)).images[:3]
    for i, face in enumerate(faces):
        Image.fromarray(face).save(tmp_path / f"crop{i}.png")
    Image.fromarray(faces[0]).resize((96, 64)).save(tmp_path / "wide.png")  # not square: squared, edges repeated
    model = load_model(tiny_model)
    results = list(predict_files([str(tmp_path / "*.png")], Analyzer(model, cropped=True), progress=False))
    assert [len(r["faces"]) for r in results] == [1, 1, 1, 1]
    assert [r["faces"][0]["box"] for r in results] == [[0, 0, 48, 48]] * 3 + [[0, 0, 96, 64]]
    expected = model.predict_proba(faces)
    for result, probabilities in zip(results, expected, strict=False):  # the crops as they are
        assert [result["faces"][0]["probabilities"][e] for e in EMOTIONS] == pytest.approx(probabilities, abs=1e-4)


def test_worker_processes_give_the_same_results_in_the_same_order(astronaut, tiny_model, tmp_path):
    from functools import partial

    from ferlab.predict import build_analyzer

    for i in range(4):
        shutil.copy(astronaut, tmp_path / f"p{i}.jpg")
    (tmp_path / "p2.jpg").write_bytes(b"broken")
    build = partial(build_analyzer, str(tiny_model))
    alone = list(predict_files([str(tmp_path)], build(), batch_images=1, progress=False))
    shared = list(predict_files([str(tmp_path)], build, batch_images=1, progress=False, workers=2))
    assert shared == alone and "error" in shared[2]
    with pytest.raises(ValueError, match="with workers, give a function that builds the analyzer"):
        list(predict_files([str(tmp_path)], build(), batch_images=1, progress=False, workers=2))


def test_paths_from_standard_input(astronaut, tiny_model, tmp_path, monkeypatch):
    import io

    for name in ("x1.jpg", "x2.jpg"):
        shutil.copy(astronaut, tmp_path / name)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{tmp_path / 'x2.jpg'}\n\n{tmp_path / 'x1.jpg'}\n"))
    results = list(predict_files(["-"], Analyzer(load_model(tiny_model)), progress=False))
    assert [r["path"].rsplit("/", 1)[1] for r in results] == ["x2.jpg", "x1.jpg"]


def test_globs_expand(astronaut, tiny_model, tmp_path):
    for name in ("x1.jpg", "x2.jpg", "y.jpg"):
        shutil.copy(astronaut, tmp_path / name)
    results = list(predict_files([str(tmp_path / "x*.jpg")], Analyzer(load_model(tiny_model)), progress=False))
    assert [r["path"].rsplit("/", 1)[1] for r in results] == ["x1.jpg", "x2.jpg"]


def test_a_big_jpeg_gives_boxes_in_its_own_pixels(astronaut, tiny_model, tmp_path):
    from ferlab.imageio import load_image

    big = tmp_path / "big.jpg"
    Image.fromarray(load_image(astronaut)).resize((4096, 4096), Image.LANCZOS).save(big, quality=92)
    analyzer = Analyzer(load_model(tiny_model))
    (record,) = analyzer.analyze(big)  # decoded at 2048x2048
    (whole,) = analyzer.analyze(load_image(big))  # an array is taken as it is
    assert np.allclose(record["box"], whole["box"], atol=16)  # 8 times ASTRONAUT_FACE, give or take 2 pixels at 1/2
    assert np.allclose(record["box"], [8 * v for v in ASTRONAUT_FACE], atol=8 * 20)
    assert record["landmarks"]["left_eye"] == pytest.approx(whole["landmarks"]["left_eye"], abs=16)
    (result,) = predict_files([str(big)], analyzer, tmp_path / "annotated", progress=False)
    assert result["faces"] == [record]
    assert Image.open(tmp_path / "annotated" / "big.annotated.jpg").size == (2048, 2048)


def test_annotations_dot_the_landmarks():
    from ferlab.predict import PALETTE, draw_annotations

    record = {"box": [20, 20, 60, 60], "label": "Happy", "confidence": 0.9,
              "probabilities": {e: 1 / 7 for e in EMOTIONS}, "landmarks": {"nose_tip": [50.0, 50.0]}}
    drawn = draw_annotations(np.zeros((160, 160, 3), np.uint8), [record])
    assert tuple(drawn[50, 50]) == tuple(PALETTE["Happy"])
    halved = draw_annotations(np.zeros((80, 80, 3), np.uint8), [record], factor=2)  # a photo decoded at half size
    assert tuple(halved[25, 25]) == tuple(PALETTE["Happy"]) and tuple(halved[50, 50]) == (0, 0, 0)


def test_faces_under_min_face_pixels_are_left_out(astronaut, tiny_model):
    import cv2

    from ferlab.imageio import load_image

    portrait = load_image(astronaut)
    photo = np.full((720, 1280, 3), 200, np.uint8)
    photo[100:612, 50:562] = portrait  # its face about 92 pixels high
    photo[200:456, 800:1056] = cv2.resize(portrait, (256, 256), interpolation=cv2.INTER_AREA)  # about 46 pixels
    model = load_model(tiny_model)
    every = Analyzer(model).analyze(photo)
    sides = sorted(min(record["box"][2:]) for record in every)
    assert len(sides) == 2 and sides[0] < 70 < sides[1]
    big = Analyzer(model, min_face=70).analyze(photo)
    assert [record["box"] for record in big] == [r["box"] for r in every if min(r["box"][2:]) >= 70]


def test_bad_settings_are_refused_up_front(tiny_model):
    model = load_model(tiny_model)
    with pytest.raises(ValueError, match="margin must be in"):
        Analyzer(model, margin=-0.5)
    with pytest.raises(ValueError, match="min_face must be 0"):
        Analyzer(model, min_face=-1)
    with pytest.raises(ValueError, match="unknown detector 'mtcnn'"):
        Analyzer(model, detector="mtcnn")
    with pytest.raises(ValueError, match="batch_images must be 1 or more"):
        next(predict_files(["x.jpg"], Analyzer(model), batch_images=0, progress=False))
