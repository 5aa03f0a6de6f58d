import json

import cv2
import numpy as np
import pytest

from ferlab.cli import main
from ferlab.data import EMOTIONS
from ferlab.explain import (
    SCORES,
    class_maps,
    deletion_curve,
    explained_records,
    hide_pixels,
    occlusion_maps,
    overlay_image,
    patch_corners,
    spread_over_patches,
)
from ferlab.imageio import load_image

HAPPY = EMOTIONS.index("Happy")
SPOT = (slice(28, 40), slice(8, 20))  # the only pixels the model below looks at


class SpotModel:
    """Says Happy the brighter a 12x12 spot is, and looks at nothing else."""

    def predict_proba(self, faces):
        logits = np.zeros((len(faces), 7))
        logits[:, HAPPY] = (faces[:, SPOT[0], SPOT[1]].mean(axis=(1, 2)) - 100) / 10
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def spot_faces(n: int, seed: int = 0) -> np.ndarray:
    faces = np.random.default_rng(seed).integers(40, 120, size=(n, 48, 48), dtype=np.uint8)
    faces[:, SPOT[0], SPOT[1]] = 230
    return faces


def test_patches_cover_every_pixel_and_bad_settings_are_refused():
    for patch, stride in ((8, 4), (6, 3), (12, 5), (12, 12), (48, 1), (1, 1)):
        corners = patch_corners(patch, stride)
        coverage = spread_over_patches(np.ones(len(corners), np.float32), corners, patch)
        assert np.allclose(coverage, 1)  # no pixel is left out (a 0/0 would be NaN)
    with pytest.raises(ValueError, match="patch"):
        patch_corners(49, 4)
    with pytest.raises(ValueError, match="stride"):
        patch_corners(8, 0)
    with pytest.raises(ValueError, match="cover every pixel"):
        patch_corners(4, 8)
    with pytest.raises(ValueError, match="units"):
        occlusion_maps(SpotModel(), spot_faces(1), units="logits")


@pytest.mark.parametrize("units", list(SCORES))
def test_the_map_lights_up_where_the_model_looks_and_nowhere_else(units):
    maps = occlusion_maps(SpotModel(), spot_faces(3), patch=8, stride=4, units=units)
    assert maps.shape == (3, 7, 48, 48) and maps.dtype == np.float32
    happy = maps[:, HAPPY]
    assert (happy[:, SPOT[0], SPOT[1]] > 0).all()  # hiding the spot lowers Happy
    # Patches that never touch the spot change nothing, so pixels only they cover are zero.
    assert np.abs(happy[:, :20, :]).max() == 0 and np.abs(happy[:, :, 28:]).max() == 0
    peak = np.unravel_index(happy[0].argmax(), (48, 48))
    assert SPOT[0].start <= peak[0] < SPOT[0].stop and SPOT[1].start <= peak[1] < SPOT[1].stop
    assert (maps[:, EMOTIONS.index("Sad"), SPOT[0], SPOT[1]] < 0).all()  # the other classes gain


def test_the_bundled_models_probability_maps_of_the_seven_classes_sum_to_zero(astronaut):
    from ferlab.predict import Analyzer

    analyzer = Analyzer()
    _, crops = analyzer.faces(load_image(astronaut))
    maps = occlusion_maps(analyzer.model, crops, units="probability")
    # Whatever a patch takes from one class goes to the others.
    assert np.abs(maps.sum(axis=1)).max() < 1e-5
    assert np.isfinite(occlusion_maps(analyzer.model, crops)).all()


def test_hiding_the_maps_top_pixels_costs_more_than_hiding_others():
    faces = spot_faces(40)
    faces[20:, SPOT[0], SPOT[1]] = 20  # half the faces are dark there: not Happy
    labels = np.where(np.arange(40) < 20, HAPPY, EMOTIONS.index("Angry"))
    model = SpotModel()
    maps = occlusion_maps(model, faces, patch=6, stride=3)
    predicted = model.predict_proba(faces).argmax(axis=1)
    own = maps[np.arange(40), predicted]
    curve = deletion_curve(model, faces, labels, own, fractions=(0.0, 0.1), patch=6, stride=3)
    assert curve["salient"][0] == curve["random_patches"][0] == 1  # the dark faces: Angry, the first of 6 ties
    assert curve["salient"][1] == 0.5  # 10% of the pixels hidden, the spot among them: no face is Happy any more
    assert curve["random_patches"][1] > 0.5 and curve["area_salient"] < curve["area_random_patches"]
    with pytest.raises(ValueError, match="one label and one"):
        deletion_curve(model, faces, labels[:3], maps[:, 0])


def test_hidden_pixels_take_the_faces_mean_grey_and_the_rest_is_untouched():
    faces = spot_faces(2)
    order = np.tile(np.arange(48 * 48), (2, 1))
    hidden = hide_pixels(faces, order, 10)
    assert (hidden[:, 0, :10] == np.rint(faces.reshape(2, -1).mean(axis=1))[:, None]).all()
    assert (hidden.reshape(2, -1)[:, 10:] == faces.reshape(2, -1)[:, 10:]).all()


def test_class_maps_average_the_right_faces_over_their_own_class():
    faces = spot_faces(4)
    own_maps = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (4, 48, 48))
    labels = np.array([HAPPY, HAPPY, HAPPY, 0])
    mean_faces, mean_maps, counts = class_maps(faces, own_maps, labels, predicted=np.array([HAPPY, HAPPY, 0, 0]))
    assert counts.tolist() == [1, 0, 0, 2, 0, 0, 0]
    assert np.allclose(mean_maps[HAPPY], 0.5) and np.allclose(mean_faces[HAPPY], faces[:2].mean(axis=0))


def test_explain_command_on_photos_writes_a_figure_per_photo_with_a_face_and_lists_bad_ones(astronaut, tmp_path, capsys):
    blank, broken = tmp_path / "blank.png", tmp_path / "broken.jpg"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    broken.write_bytes(b"\xff\xd8\xff not really")
    assert main(["explain", str(astronaut), str(blank), str(broken), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    first, second, third = (json.loads(line) for line in captured.out.splitlines())
    assert third["path"] == str(broken) and "error" in third and "skipped" in captured.err
    assert first["faces"][0]["label"] in EMOTIONS and first["explanation"].endswith("astronaut.explain.png")
    assert (tmp_path / "out" / "astronaut.explain.png").stat().st_size > 10_000
    assert second["faces"] == [] and "explanation" not in second and "no face found" in captured.err
    assert not (tmp_path / "out" / "blank.explain.png").exists()


def test_explain_command_on_a_split_writes_per_class_maps_and_deletion_curves(tiny_csv, tiny_model, tmp_path, capsys):
    out = tmp_path / "split"
    args = ["explain", "--data", str(tiny_csv), "--split", "PublicTest", "--limit", "14", "--model", str(tiny_model),
            "--patch", "12", "--stride", "12", "--out", str(out), "--quiet"]
    assert main(args) == 0
    curve = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "explain.json").read_text())
    assert summary["faces"] == 14 and summary["patch"] == 12 and summary["deletion"] == curve
    assert len(curve["salient"]) == len(curve["fractions"]) and 0 <= curve["area_salient"] <= 1
    assert (out / "saliency_by_class.png").exists() and (out / "deletion.png").exists()
    with np.load(out / "class_maps.npz") as saved:
        assert saved["mean_maps"].shape == (7, 48, 48) and saved["counts"].sum() <= 14
        assert summary["correct_per_class"] == dict(zip(EMOTIONS, saved["counts"].tolist(), strict=True))


def test_explain_command_wants_photos_or_data_not_both(astronaut, tiny_csv, capsys):
    assert main(["explain"]) == 2
    assert "give photos" in capsys.readouterr().err
    assert main(["explain", str(astronaut), "--data", str(tiny_csv)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["explain", "--data", str(tiny_csv), "--limit", "0"]) == 2
    assert "--limit must be 1 or more" in capsys.readouterr().err


def test_overlay_is_red_where_hiding_lowers_the_class_blue_where_it_raises_it_and_grey_elsewhere():
    face = np.full((48, 48), 100, np.uint8)
    saliency = np.zeros((48, 48), np.float32)
    saliency[:10, :10], saliency[-10:, -10:] = 0.5, -0.25
    picture = overlay_image(face, saliency, scale=2)
    assert picture.shape == (96, 96, 3) and picture.dtype == np.uint8
    red, blue, grey = picture[0, 0].astype(int), picture[-1, -1].astype(int), picture[40, 40]
    assert red[0] > red[2] + 50 and blue[2] > blue[0] + 20 and (grey == 100).all()


def test_explained_records_explain_the_largest_faces_up_to_the_limit(astronaut):
    from ferlab.predict import Analyzer

    analyzer = Analyzer()
    faces, crops = analyzer.faces(load_image(astronaut))
    faces, crops = faces * 3, np.concatenate([crops, crops[:, :, ::-1], crops])  # as for a photo of three faces
    records = explained_records(analyzer, faces, crops, max_faces=2)
    assert ["explanation" in record for record in records] == [True, True, False]
    plain = analyzer.records(faces, analyzer.model.predict_proba(crops))
    assert [{k: v for k, v in record.items() if k != "explanation"} for record in records] == plain


def test_analyze_can_explain_each_face(astronaut):
    import ferlab

    plain, explained = ferlab.analyze(astronaut), ferlab.analyze(astronaut, explain=True)
    assert explained[0]["explanation"]["label"] == plain[0]["label"]
    assert explained[0]["explanation"]["image"].startswith("data:image/png;base64,")
    assert {k: v for k, v in explained[0].items() if k != "explanation"} == plain[0]
    json.dumps(explained)  # JSON-safe, as every record
