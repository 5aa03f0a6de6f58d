import argparse
import csv
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from ferlab.cli import build_parser, main
from ferlab.train import TrainConfig


def test_data_stats_prints_counts(tiny_csv, capsys):
    assert main(["data", "stats", str(tiny_csv)]) == 0
    out = capsys.readouterr().out
    assert "Training" in out and "140" in out and "constant images (0)" in out
    assert main(["data", "stats", str(tiny_csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 280


def test_data_pack_writes_a_copy_that_loads_the_same(tiny_csv, tmp_path, capsys):
    packed = tmp_path / "fer.packed.npz"
    assert main(["data", "pack", str(tiny_csv), "--out", str(packed)]) == 0
    assert str(packed) in capsys.readouterr().out
    assert main(["data", "stats", str(packed)]) == 0
    assert "Training" in capsys.readouterr().out


def test_bad_file_is_one_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n9,1 2 3,Training\n")
    assert main(["data", "stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ferlab: error: ") and "bad.csv:2" in err
    assert "Traceback" not in err


def test_train_evaluate_and_report_commands(tiny_csv, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_csv), "--out", str(out), "--epochs", "1", "--batch-size", "32",
            "--model-option", "hidden=16", "--model-option", "batch_norm=false"]
    assert main(args) == 0
    assert "PrivateTest" in capsys.readouterr().out
    card = json.loads((out / "model.json").read_text())
    assert card["model_options"] == {"hidden": 16, "batch_norm": False}
    assert main(["evaluate", str(out), "--data", str(tiny_csv)]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["n"] == 70


def test_fine_tuning_on_faces_of_ones_own_takes_the_starts_architecture(tiny_csv, tmp_path, capsys):
    import cv2

    from ferlab.data import EMOTIONS, load_fer2013, split_rows

    from .conftest import synthetic_faces

    start = tmp_path / "start"
    assert main(["train", "--data", str(tiny_csv), "--out", str(start), "--epochs", "1", "--batch-size", "32",
                 "--model-option", "widths=[8,16,16]", "--model-option", "convs_per_block=1",
                 "--model-option", "hidden=16"]) == 0
    # faces checked into emotion folders, as `ferlab predict --crops` writes them
    images, labels = synthetic_faces(60, seed=5)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / "mine" / EMOTIONS[label].lower()).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "mine" / EMOTIONS[label].lower() / f"photo{i}.face0.png"), image)
    capsys.readouterr()
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(tmp_path / "mine"), "--init", str(start), "--out", str(tuned),
                 "--epochs", "1", "--batch-size", "16", "--model-option", "dropout=0.2"]) == 0  # no --model
    assert "PrivateTest" in capsys.readouterr().out
    card = json.loads((tuned / "model.json").read_text())
    assert card["model"] == "paper_cnn"
    assert card["model_options"] == {"widths": [8, 16, 16], "convs_per_block": 1, "hidden": 16, "dropout": 0.2}
    # the run, `ferlab evaluate` and the start compared on it all see the same 6 test faces
    assert main(["evaluate", str(tuned), "--data", str(tmp_path / "mine"), "--compare", str(start)]) == 0
    compared = json.loads(capsys.readouterr().out)
    test_faces = len(split_rows(load_fer2013(tmp_path / "mine"))["PrivateTest"])
    assert test_faces == 6 and json.loads((tuned / "metrics.json").read_text())["test"]["n"] == test_faces
    assert compared["PrivateTest"]["n"] == 6
    assert main(["train", "--data", str(tmp_path / "mine"), "--init", "fast-int8", "--out", str(tmp_path / "x"),
                 "--epochs", "1"]) == 2
    assert "name of a bundled model with PyTorch weights (default, fast, robust)" in capsys.readouterr().err


def test_evaluate_takes_a_bundled_model_by_name(tiny_csv, capsys):
    assert main(["evaluate", "fast", "--data", str(tiny_csv)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "fast_cnn" and metrics["test"]["n"] == 70
    assert "seconds_per_epoch" not in metrics  # a bundled model has no training history beside it
    assert main(["evaluate", "default", "fast", "--data", str(tiny_csv), "--tta", "flip"]) == 0
    separate = json.loads(capsys.readouterr().out)
    assert 0 <= separate["test_accuracy"] <= 1 and separate["engines"] == ["torch", "torch"]
    assert main(["evaluate", "default+fast", "--data", str(tiny_csv), "--tta", "flip"]) == 0
    joined = json.loads(capsys.readouterr().out)
    assert joined == separate
    # What the ensemble classifier predicts, member by member at its own temperature.
    from ferlab.classifier import load_model
    from ferlab.data import load_fer2013, train_val_test

    images, labels = train_val_test(load_fer2013(tiny_csv))["PrivateTest"]
    predicted = load_model("default+fast", tta="flip", backend="torch").predict(images)
    assert abs(float((predicted == labels).mean()) - joined["test_accuracy"]) <= 2 / 70  # bf16 batches aside
    assert main(["export", "--onnx", "x.onnx", "--model", "default+fast"]) == 2
    assert "export one model at a time" in capsys.readouterr().err


def test_evaluate_compares_two_models_on_the_same_faces(tiny_csv, capsys):
    assert main(["evaluate", "default", "--compare", "fast", "--data", str(tiny_csv)]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert (compared["a"], compared["b"], compared["backend"]) == ("default", "fast", "torch")
    assert sorted(compared) == ["PrivateTest", "PrivateTest_deduplicated", "PublicTest", "a", "b", "backend", "tta"]
    public = compared["PublicTest"]
    assert public["n"] == 70 and 0 <= public["p_value"] <= 1
    assert public["accuracy_a"] - public["accuracy_b"] == pytest.approx(
        (public["only_a_right"] - public["only_b_right"]) / 70)
    assert main(["evaluate", "fast", "--compare", "fast", "--data", str(tiny_csv), "--tta", "flip"]) == 0
    same = json.loads(capsys.readouterr().out)["PrivateTest"]
    assert (same["only_a_right"], same["only_b_right"], same["p_value"]) == (0, 0, 1.0)


def test_evaluate_writes_each_test_faces_probabilities(tiny_csv, tmp_path, capsys):
    from ferlab.classifier import load_model
    from ferlab.data import EMOTIONS, load_fer2013, split_rows

    path = tmp_path / "predictions.csv"
    assert main(["evaluate", "fast", "--data", str(tiny_csv), "--predictions", str(path)]) == 0
    metrics = json.loads(capsys.readouterr().out)  # as before
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    data, model = load_fer2013(tiny_csv), load_model("fast", backend="torch")
    for split, key in (("PublicTest", "val"), ("PrivateTest", "test")):
        mine = [row for row in rows if row["split"] == split]
        assert [int(row["row"]) for row in mine] == split_rows(data)[split].tolist()
        assert [row["label"] for row in mine] == [EMOTIONS[data.labels[int(row["row"])]] for row in mine]
        right = sum(row["label"] == row["predicted"] for row in mine)
        assert right / len(mine) == pytest.approx(metrics[key]["accuracy"])  # the faces of the scores printed
        probabilities = model.predict_proba(data.images[split_rows(data)[split]])  # calibrated as load_model's
        assert [float(row["Happy"]) for row in mine] == pytest.approx(probabilities[:, 3].tolist(), abs=0.02)
    assert all(abs(sum(float(row[e]) for e in EMOTIONS) - 1) < 1e-4 for row in rows)
    assert {row["also_in_training"] for row in rows} <= {"0", "1"}


def test_evaluate_runs_a_bundled_model_on_either_engine_alike(tiny_csv, capsys):
    results = {}
    for backend in ("torch", "onnx"):
        assert main(["evaluate", "fast", "--backend", backend, "--data", str(tiny_csv)]) == 0
        results[backend] = json.loads(capsys.readouterr().out)
    torch_metrics, onnx_metrics = results["torch"], results["onnx"]
    assert (torch_metrics["engine"], onnx_metrics["engine"]) == ("torch", "onnxruntime")
    assert onnx_metrics["trainable_parameters"] == torch_metrics["trainable_parameters"]
    # Both at temperature 1: PyTorch's bf16 batches move the loss a little, not the temperature's 14%.
    for split in ("val", "test"):
        assert onnx_metrics[split]["loss"] == pytest.approx(torch_metrics[split]["loss"], rel=0.02)
        assert abs(onnx_metrics[split]["accuracy"] - torch_metrics[split]["accuracy"]) <= 2 / 70


def test_unknown_train_option_is_an_error(tiny_csv, tmp_path, capsys):
    args = ["train", "--data", str(tiny_csv), "--out", str(tmp_path / "r"), "--epochs", "1",
            "--model-option", "wings=2"]
    assert main(args) == 2
    assert "unknown paper_cnn option" in capsys.readouterr().err


def test_train_help_explains_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in fields(TrainConfig):
        if f.name != "model_options":
            assert f"{f.metadata['help']} (default: {f.default})" in text


def test_search_help_gives_the_defaults_a_trial_trains_with(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "passes over the Training split (default: 3)" in text
    assert "(search, smoke tests) (default: 8000)" in text
    assert "peak learning rate (default: searched; giving the flag holds it fixed)" in text


def _arguments(parser: argparse.ArgumentParser, path: str = "ferlab"):
    """(command path, argument) for every argument of every (sub-)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _arguments(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_argument_of_every_command_has_help():
    unexplained = [f"{path} {a.option_strings or a.dest}" for path, a in _arguments(build_parser()) if not a.help]
    assert unexplained == []


def test_every_option_with_a_default_names_it_in_its_help():
    unstated = [f"{path} {a.option_strings}" for path, a in _arguments(build_parser())
                if a.default not in (None, False, argparse.SUPPRESS, []) and "default" not in a.help]
    assert unstated == []


def test_train_choice_typo_is_caught_before_any_data_is_read(tmp_path, capsys):
    args = ["train", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r"), "--schedule", "cosin"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert "invalid choice: 'cosin'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_predict_command_lists_bad_inputs_and_exits_1(astronaut, tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    out = tmp_path / "out.jsonl"
    code = main(["predict", str(astronaut), str(bad), "--model", str(tiny_model), "--out", str(out), "--quiet"])
    assert code == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and len(lines[0]["faces"]) == 1 and "empty file" in lines[1]["error"]
    printed = capsys.readouterr().err
    assert "skipped" in printed
    assert f"1 of 2 images analyzed: 1 face, 1 {lines[0]['faces'][0]['label']}; results in {out}" in printed


def test_predict_says_which_videos_of_a_folder_it_left_out(astronaut, tiny_model, tmp_path, capsys):
    import shutil

    folder = tmp_path / "DCIM 100"  # a phone's: photos and videos
    folder.mkdir()
    shutil.copy(astronaut, folder / "IMG_0001.jpg")
    (folder / "IMG_0002.MOV").write_bytes(b"a video")
    assert main(["predict", str(folder), "--model", str(tiny_model), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert len(printed.out.splitlines()) == 1  # the photo
    assert printed.err.strip() == (f"ferlab: left out 1 video in {folder} (IMG_0002.MOV): "
                                   f"ferlab video '{folder}' analyzes them")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_predict_resumes_a_stopped_run_without_redoing_or_losing_images(astronaut, tiny_model, tmp_path, capsys,
                                                                        monkeypatch, suffix):
    import shutil

    from ferlab import predict

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        shutil.copy(astronaut, photos / f"p{i}.jpg")
    out = tmp_path / f"faces{suffix}"
    analyzed = []
    real_faces = predict.Analyzer.faces

    def faces_until_stopped(self, rgb, factor=1):
        if len(analyzed) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth photo is analyzed
        analyzed.append(1)
        return real_faces(self, rgb, factor)

    monkeypatch.setattr(predict.Analyzer, "faces", faces_until_stopped)
    command = ["predict", str(photos), "--model", str(tiny_model), "--out", str(out), "--batch-images", "1", "--quiet",
               "--workers", "1"]  # the stop is staged in this process
    assert main(command) == 130
    assert "add --resume to the same command" in capsys.readouterr().err
    monkeypatch.setattr(predict.Analyzer, "faces", real_faces)
    with open(out, "a") as handle:
        handle.write('{"path": "half a line' if suffix == ".jsonl" else "half,a,row")  # as if killed mid-write
    assert main([*command, "--resume"]) == 0
    assert "3 images done before are skipped" in capsys.readouterr().err
    lines = out.read_text().splitlines()
    if suffix == ".jsonl":
        assert sorted(json.loads(line)["path"].rsplit("/", 1)[1] for line in lines) == [f"p{i}.jpg" for i in range(5)]
    else:
        assert lines[0].startswith("path,face") and sorted(line.split(",")[0].rsplit("/", 1)[1] for line in lines[1:]) == [
            f"p{i}.jpg" for i in range(5)]
    assert main(["predict", str(photos), "--model", str(tiny_model), "--resume", "--quiet"]) == 2
    assert "--resume goes on with the results file of --out" in capsys.readouterr().err


def test_models_lists_the_bundled_models_as_their_cards_measured_them(capsys):
    from ferlab.classifier import bundled_models, bundled_path, card_beside

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in bundled_models():
        card, row = card_beside(bundled_path(name)), next(line for line in lines if line.split()[0] == name)
        assert card["model"] in row and f"{card['accuracy']['PrivateTest']:.2%}" in row
        assert f"{max(card['faces_per_second'].values()):,}" in row and bundled_path(name).name in row
        assert f"{name}: measured on {card['measured_on']}" in lines
    assert any(line.startswith("architectures to train") and "paper_cnn" in line for line in lines)
    assert main(["models", "--json"]) == 0
    assert [card["name"] for card in json.loads(capsys.readouterr().out)] == bundled_models()


def test_output_cut_short_by_its_reader_is_not_an_error():
    """`ferlab models | head -1`: the reader goes away; no error message, the shell's status."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-m", "ferlab.cli", "models", "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()  # gone before the first line is written
    assert child.wait(timeout=120) == 141 and child.stderr.read() == b""


def test_version(capsys):
    import ferlab

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"ferlab {ferlab.__version__}"
    import subprocess
    import sys

    as_module = subprocess.run([sys.executable, "-m", "ferlab", "--version"], capture_output=True, text=True, check=True)
    assert as_module.stdout.strip() == f"ferlab {ferlab.__version__}"  # python -m ferlab: the same command


def test_predict_shares_photos_among_worker_processes(astronaut, tiny_model, tmp_path, capsys):
    import shutil

    for i in range(4):  # four batches of one: two each for two workers
        shutil.copy(astronaut, tmp_path / f"p{i}.jpg")
    outs = {}
    for workers in ("1", "2"):
        outs[workers] = tmp_path / f"w{workers}.jsonl"
        assert main(["predict", str(tmp_path / "*.jpg"), "--model", str(tiny_model), "--out", str(outs[workers]),
                     "--batch-images", "1", "--workers", workers, "--quiet"]) == 0
    assert outs["2"].read_text() == outs["1"].read_text() and len(outs["2"].read_text().splitlines()) == 4


def test_predict_turns_tilted_faces_unless_told_not_to(astronaut, tiny_model, tmp_path, capsys):
    import cv2

    from ferlab.imageio import load_image

    rgb = load_image(astronaut)
    tilted = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((224, 113), 25, 1.0), rgb.shape[1::-1],
                            borderMode=cv2.BORDER_REFLECT)
    photo = tmp_path / "tilted.png"
    cv2.imwrite(str(photo), cv2.cvtColor(tilted, cv2.COLOR_RGB2BGR))
    outputs = {}
    for name, flags in {"default": [], "never": ["--no-align"], "above 40": ["--align-min-tilt", "40"]}.items():
        assert main(["predict", str(photo), "--model", str(tiny_model), "--quiet", *flags]) == 0
        outputs[name] = json.loads(capsys.readouterr().out.splitlines()[-1])["faces"][0]["probabilities"]
    assert outputs["never"] == outputs["above 40"] != outputs["default"]


def test_export_and_predict_with_onnx(astronaut, tiny_model, tmp_path, capsys):
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--onnx", str(onnx), "--model", str(tiny_model)]) == 0
    assert main(["predict", str(astronaut), "--model", str(onnx), "--quiet"]) == 0
    assert len(json.loads(capsys.readouterr().out.splitlines()[-1])["faces"]) == 1


def test_int8_export_is_calibrated_and_measured_on_the_data(tiny_csv, tiny_model, tmp_path, capsys):
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--onnx", str(onnx), "--model", str(tiny_model), "--int8"]) == 2
    assert "--int8 needs --data" in capsys.readouterr().err
    assert main(["export", "--onnx", str(onnx), "--model", str(tiny_model), "--int8", "--data", str(tiny_csv),
                 "--calibration-faces", "100"]) == 0
    assert "calibrated on 100 Training faces" in capsys.readouterr().out
    exported = json.loads(onnx.with_suffix(".json").read_text())["onnx"]
    assert exported["precision"] == "int8" and 0 <= exported["accuracy"]["PrivateTest"] <= 1


def test_demo_writes_annotated_photo_and_json(tiny_model, tmp_path):
    assert main(["demo", "--model", str(tiny_model), "--out", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "astronaut.annotated.jpg").stat().st_size > 0
    assert len(json.loads((tmp_path / "demo" / "astronaut.json").read_text())["faces"]) == 1
    assert main(["demo", "--backend", "onnx", "--out", str(tmp_path / "onnx")]) == 0  # the bundled default's twin
    assert json.loads((tmp_path / "onnx" / "astronaut.json").read_text())["faces"][0]["label"] == "Happy"


def test_package_model_writes_weights_and_measured_cards(tiny_csv, tmp_path):
    run = tmp_path / "run"
    # A narrow network: package-model times the classifier on 8,192 faces, ten passes.
    assert main(["train", "--data", str(tiny_csv), "--out", str(run), "--epochs", "1", "--batch-size", "32",
                 "--model-option", "widths=[8,16,16]", "--model-option", "convs_per_block=1",
                 "--model-option", "hidden=16"]) == 0
    out = tmp_path / "pretrained"
    assert main(["package-model", str(run), "--data", str(tiny_csv), "--out", str(out), "--name", "m",
                 "--command", "ferlab train ...", "--note", "best so far"]) == 0
    card = json.loads((out / "m.json").read_text())
    assert card["data"]["sha256"] and 0 <= card["accuracy"]["PrivateTest"] <= 1
    assert set(card["faces_per_second"]) == {"onnxruntime", "torch"} and min(card["faces_per_second"].values()) > 0
    assert card["note"] == "best so far"
    assert set(card["accuracy_with_tta"]) == {"flip", "shift"}
    assert 0 <= card["accuracy_with_tta"]["shift"]["PrivateTest"] <= 1
    assert "PrivateTest (test)" in (out / "m.md").read_text() and "best so far" in (out / "m.md").read_text()
    # Temperature scaling: fitted on PublicTest, it lowers the likelihood loss there; PrivateTest
    # is scored both ways (the figures a user reads in the card).
    calibration = card["calibration"]
    assert card["temperature"] > 0 and set(calibration) == {
        "PrivateTest_calibration_error", "PrivateTest_nll",
        "PrivateTest_calibration_error_at_temperature_1", "PrivateTest_nll_at_temperature_1"}
    assert f"soft-max at temperature {card['temperature']}" in (out / "m.md").read_text()
    speeds = card["faces_per_second"]  # what was timed, on each engine
    assert f"{speeds['onnxruntime']:,} faces/s on ONNX Runtime, {speeds['torch']:,} faces/s on PyTorch" in (
        out / "m.md").read_text()
    import numpy as np
    from scipy.special import softmax

    from ferlab.classifier import load_model
    from ferlab.data import load_fer2013, train_val_test
    from ferlab.evaluate import predict_logits
    from ferlab.metrics import classification_metrics
    from ferlab.models import load_trained

    shipped = load_model(out / "m.safetensors", backend="torch")
    assert shipped.card["name"] == "m"
    splits, network = train_val_test(load_fer2013(tiny_csv)), load_trained(run)[0]
    val_images, val_labels = splits["PublicTest"]
    val_logits = predict_logits(network, val_images, precision="fp32")
    assert (classification_metrics(val_labels, val_logits / card["temperature"])["loss"]
            <= classification_metrics(val_labels, val_logits)["loss"] + 1e-3)
    images, labels = splits["PrivateTest"]
    logits = predict_logits(network, images, precision="fp32")
    np.testing.assert_allclose(shipped.predict_proba(images), softmax(logits / card["temperature"], axis=1), atol=2e-3)
    scaled = classification_metrics(labels, logits / card["temperature"])
    assert calibration["PrivateTest_nll"] == pytest.approx(scaled["loss"], rel=1e-2)
    # The ONNX twin that installs without PyTorch run: the same model, card and probabilities.
    twin = load_model(out / "m.safetensors", backend="onnx")
    assert twin.path == out / "m.onnx" and twin.card == shipped.card
    np.testing.assert_allclose(twin.predict_proba(images), softmax(logits / card["temperature"], axis=1), atol=1e-4)


def test_package_model_ships_an_int8_onnx_measured_through_onnx_runtime(tiny_csv, tiny_model, tmp_path, capsys):
    from ferlab.classifier import load_model
    from ferlab.data import load_fer2013, train_val_test

    unpackaged = tmp_path / "unpackaged.onnx"
    assert main(["export", "--onnx", str(unpackaged), "--model", str(tiny_model), "--int8", "--data", str(tiny_csv),
                 "--calibration-faces", "100"]) == 0
    out = tmp_path / "pretrained"
    package = ["--data", str(tiny_csv), "--out", str(out), "--name", "m-int8", "--command", "ferlab train ..."]
    assert main(["package-model", str(unpackaged), *package]) == 2
    assert "lacks the parameter count" in capsys.readouterr().err
    assert main(["package-model", str(tiny_model), "--data", str(tiny_csv), "--out", str(out),
                 "--name", "m", "--command", "ferlab train ..."]) == 0
    first = (out / "m.json").read_text()
    assert main(["package-model", str(tiny_model), "--data", str(tiny_csv), "--out", str(out),
                 "--name", "m", "--command", "ferlab train ... again"]) == 2  # a model of that name is there
    assert "--replace to replace it" in capsys.readouterr().err and (out / "m.json").read_text() == first
    int8 = tmp_path / "m-int8.onnx"
    assert main(["export", "--onnx", str(int8), "--model", str(out / "m.safetensors"), "--int8", "--data",
                 str(tiny_csv), "--calibration-faces", "100"]) == 0
    assert main(["package-model", str(int8), *package]) == 0
    card = json.loads((out / "m-int8.json").read_text())
    assert card["onnx"]["precision"] == "int8" and list(card["faces_per_second"]) == ["onnxruntime"]
    assert (out / "m-int8.onnx").exists() and not (out / "m-int8.safetensors").exists()
    assert "faces/s on ONNX Runtime (batched" in (out / "m-int8.md").read_text()
    # The temperature is the source model's, built into the exported graph; the calibration is
    # measured again on the int8 model as ONNX Runtime runs it.
    assert card["temperature"] == json.loads((out / "m.json").read_text())["temperature"]
    assert card["calibration"]["PrivateTest_nll"] <= card["calibration"]["PrivateTest_nll_at_temperature_1"] + 1e-3
    images, labels = train_val_test(load_fer2013(tiny_csv))["PrivateTest"]
    shipped = load_model(out / "m-int8.onnx")
    assert card["accuracy"]["PrivateTest"] == float((shipped.predict(images) == labels).mean())
    capsys.readouterr()
    assert main(["evaluate", str(out / "m-int8.onnx"), "--data", str(tiny_csv)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["test"]["accuracy"] == card["accuracy"]["PrivateTest"]
    assert metrics["test_shift_tta_accuracy"] == card["accuracy_with_tta"]["shift"]["PrivateTest"]
    # An ensemble may mix engines: the int8 file on ONNX Runtime, the safetensors on PyTorch.
    assert main(["evaluate", str(out / "m-int8.onnx"), str(out / "m.safetensors"), "--data", str(tiny_csv)]) == 0
    assert json.loads(capsys.readouterr().out)["engines"] == ["onnx", "torch"]
    assert main(["evaluate", str(out / "m-int8.onnx"), "--backend", "torch", "--data", str(tiny_csv)]) == 2
    assert "an ONNX model runs on ONNX Runtime" in capsys.readouterr().err


def test_cli_names_the_searched_hyper_parameters():
    from ferlab.cli import SEARCHED
    from ferlab.search import SEARCH_SPACE

    assert tuple(SEARCH_SPACE) == SEARCHED


def test_ensemble_and_tta_evaluation(tiny_csv, tmp_path, capsys):
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        assert main(["train", "--data", str(tiny_csv), "--out", str(run), "--epochs", "1", "--batch-size", "32",
                     "--model-option", "hidden=16", "--seed", str(seed)]) == 0
        runs.append(str(run))
    capsys.readouterr()
    assert main(["evaluate", *runs, "--data", str(tiny_csv), "--tta", "shift"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["models"] == runs and result["tta"] == "shift"
    assert 0 <= result["test_accuracy"] <= 1 and 0 <= result["test_deduplicated_accuracy"] <= 1


def test_video_command_stops_at_max_seconds(astronaut, tiny_model, tmp_path, capsys):
    import cv2

    from ferlab.imageio import load_image

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, face.shape[1::-1])
    for _ in range(6):
        writer.write(face)
    writer.release()
    out = tmp_path / "out"
    assert main(["video", str(tmp_path / "clip.mp4"), "--model", str(tiny_model), "--out", str(out),
                 "--max-seconds", "0.25", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stopped"] == "max_seconds" and result["frames"] == 3
    assert (out / "clip.timeline.csv").exists() and (out / "clip.emotions.png").exists()

    assert main(["video", str(tmp_path / "clip.mp4"), "--model", str(tiny_model), "--out", str(out),
                 "--every", "2", "--jsonl", "--quiet"]) == 0
    printed = capsys.readouterr()
    frames = [json.loads(line) for line in printed.out.splitlines()]
    assert [f["frame"] for f in frames] == [0, 2, 4] and [f["time_s"] for f in frames] == [0.0, 0.2, 0.4]
    assert [[face["track"] for face in f["faces"]] for f in frames] == [[0], [0], [0]]
    assert json.loads(printed.err)["analyzed_frames"] == 3

    for option, copy in ((["--annotate-video"], "clip.annotated.mp4"),
                         (["--annotate-video", "webm"], "clip.annotated.webm")):
        assert main(["video", str(tmp_path / "clip.mp4"), "--model", str(tiny_model), "--out", str(out), "--quiet",
                     *option]) == 0
        assert json.loads(capsys.readouterr().out)["annotated"] == str(out / copy)

    # the copy and the viewer later, from the timeline, without a model
    timeline = out / "clip.timeline.csv"
    assert main(["video", str(tmp_path / "clip.mp4"), "--out", str(out), "--quiet", "--every", "2"]) == 0
    capsys.readouterr()
    assert main(["video", str(tmp_path / "clip.mp4"), "--faces-from", str(timeline), "--out", str(tmp_path / "later")]) == 2
    assert "every frame in it is a multiple of 2: give the --every it was made with (--every 2?)" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "clip.mp4"), "--faces-from", str(timeline), "--every", "2", "--model", "nowhere",
                 "--out", str(tmp_path / "later"), "--quiet", "--html", "--annotate-video", "mp4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["analyzed_frames"] == 3 and Path(result["html"]).exists() and Path(result["annotated"]).exists()
    assert (tmp_path / "later" / "clip.timeline.csv").read_text() == timeline.read_text()


def test_video_command_keeps_the_sound_unless_asked_not_to(astronaut, tiny_model, tmp_path, capsys):
    from ferlab.imageio import load_image

    from .conftest import write_video_with_sound

    video = tmp_path / "talk.mp4"
    write_video_with_sound(video, seconds=0.4, picture=load_image(astronaut))
    common = ["video", str(video), "--model", str(tiny_model), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a"), "--annotate-video", "mp4"]) == 0
    assert json.loads(capsys.readouterr().out)["sound"] == "kept"
    assert main([*common, "--out", str(tmp_path / "b"), "--annotate-video", "mp4", "--no-sound"]) == 0
    assert json.loads(capsys.readouterr().out)["sound"] == "left out: asked for none"
    assert main([*common, "--out", str(tmp_path / "c"), "--no-sound"]) == 2
    assert "--no-sound is for the annotated copy: add --annotate-video" in capsys.readouterr().err


def test_ctrl_c_before_a_videos_first_frame_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    from ferlab import video

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(video, "analyze_videos", interrupted)
    assert main(["video", str(tmp_path / "clip.mp4"), "--workers", "1", "--model", "fast"]) == 130
    assert capsys.readouterr().err.strip() == ("ferlab: stopped by Ctrl-C before the first frame was analyzed; "
                                               "nothing was written")


def test_video_command_resumes_a_folder_of_videos(astronaut, tiny_model, tmp_path, capsys):
    import cv2

    from ferlab.imageio import load_image

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a", "b", "c"):
        writer = cv2.VideoWriter(str(folder / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, face.shape[1::-1])
        for _ in range(3):
            writer.write(face)
        writer.release()
    out = tmp_path / "out"
    command = ["video", str(folder), "--model", str(tiny_model), "--out", str(out), "--quiet", "--workers", "1"]
    assert main([*command, "--summary", str(tmp_path / "first.csv")]) == 0
    first = {Path(r["video"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert json.loads((out / "a.summary.json").read_text()) == {"video": str(folder / "a.mp4"), **first["a.mp4"]}

    # b was stopped part way, and c's summary was lost: they are analyzed again, a is not
    stopped = json.loads((out / "b.summary.json").read_text()) | {"stopped": "interrupted"}
    (out / "b.summary.json").write_text(json.dumps(stopped))
    (out / "c.summary.json").unlink()
    timeline_a = (out / "a.timeline.csv").stat().st_mtime_ns
    assert main([*command, "--resume", "--summary", str(tmp_path / "again.csv")]) == 0
    printed = capsys.readouterr()
    again = [json.loads(line) for line in printed.out.splitlines()]
    assert [(Path(r["video"]).name, r.get("resumed", False)) for r in again] == [
        ("a.mp4", True), ("b.mp4", False), ("c.mp4", False)]
    assert again[0]["tracks"] == first["a.mp4"]["tracks"] and (out / "a.timeline.csv").stat().st_mtime_ns == timeline_a
    assert "3 of 3 videos analyzed (1 of them before, skipped by --resume)" in printed.err
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "first.csv").read_text()  # every video's rows

    # another --every is another analysis, and outputs not written before are written: all again
    for other in (["--every", "2"], ["--subtitles"]):
        assert main([*command, "--resume", *other]) == 0
        assert not any(json.loads(line).get("resumed") for line in capsys.readouterr().out.splitlines())
    assert main([*command, "--resume", "--subtitles"]) == 0
    assert all(json.loads(line).get("resumed") for line in capsys.readouterr().out.splitlines())
    assert main(["video", str(folder / "a.mp4"), "--model", str(tiny_model), "--out", str(out), "--quiet",
                 "--resume"]) == 0  # one video alone
    printed = capsys.readouterr()
    assert json.loads(printed.out)["resumed"] is True and "was analyzed to its end before" in printed.err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_video_command_takes_a_folder_of_videos(astronaut, tiny_model, tmp_path, capsys, workers):
    import cv2

    from ferlab.imageio import load_image

    face = cv2.cvtColor(load_image(astronaut), cv2.COLOR_RGB2BGR)
    folder = tmp_path / "clips"
    (folder / "more").mkdir(parents=True)
    for path, frames in ((folder / "one.mp4", 3), (folder / "more" / "two.avi", 5)):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, face.shape[1::-1])
        for _ in range(frames):
            writer.write(face)
        writer.release()
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("not searched")
    out = tmp_path / "out"
    assert main(["video", str(folder), "--model", str(tiny_model), "--out", str(out), "--quiet",
                 "--workers", workers, "--summary", str(tmp_path / "summary.csv"), "--html", "--subtitles"]) == 1
    printed = capsys.readouterr()
    results = [json.loads(line) for line in printed.out.splitlines()]
    assert [Path(r["video"]).name for r in results] == ["broken.mp4", "two.avi", "one.mp4"]  # in path order
    assert "not a video OpenCV can open" in results[0]["error"] and "skipped" in printed.err
    assert [r["analyzed_frames"] for r in results[1:]] == [5, 3] and [len(r["tracks"]) for r in results[1:]] == [1, 1]
    assert (out / "one.timeline.csv").exists() and (out / "two.emotions.png").exists()
    assert "2 of 3 videos analyzed" in printed.err
    with open(tmp_path / "summary.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [(Path(row["video"]).name, row["track"], row["analyzed_frames"]) for row in table] == [
        ("broken.mp4", "", ""), ("two.avi", "0", "5"), ("one.mp4", "0", "3")]
    assert "not a video" in table[0]["error"] and table[1]["label"] == results[1]["tracks"][0]["label"]
    assert float(table[2]["Happy"]) == results[2]["tracks"][0]["probabilities"]["Happy"]
    assert float(table[2]["share_Happy"]) == results[2]["tracks"][0]["label_shares"]["Happy"]
    overview = (out / "index.html").read_text()  # with a link to each video's player
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', overview) == [("two.html", "two.avi"), ("one.html", "one.mp4")]
    assert re.findall(r'<a class="file" href="([^"]+)">', overview) == ["two.emotions.srt", "one.emotions.srt"]
    assert "not a video OpenCV can open" in overview and "5 of 5 frames (0.5 s)" in overview
    assert f"overview of the videos with links to their players: {out / 'index.html'}" in printed.err

    (folder / "more" / "one.mp4").write_bytes((folder / "one.mp4").read_bytes())  # one name, two folders
    assert main(["video", str(folder / "one.mp4"), str(folder / "more" / "one.mp4"), "--model", str(tiny_model),
                 "--out", str(out / "same"), "--quiet"]) == 0
    assert (out / "same" / "one.timeline.csv").exists() and (out / "same" / "more" / "one.timeline.csv").exists()
    (folder / "one.avi").write_bytes((folder / "one.mp4").read_bytes())  # one name, one folder
    assert main(["video", str(folder), "--model", str(tiny_model), "--out", str(out), "--quiet"]) == 2
    assert "several videos in" in capsys.readouterr().err
    assert main(["video", str(folder / "one.mp4"), str(folder / "more" / "two.avi"), "--jsonl",
                 "--model", str(tiny_model)]) == 2
    assert "--jsonl prints the frames of one video" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "none"), "--model", str(tiny_model)]) == 2


def test_without_the_training_tools_demo_video_web_api_and_evaluate_run_and_training_says_what_it_needs(
        tiny_csv, tmp_path):
    from .conftest import run_without_training_tools

    out = run_without_training_tools("""
import contextlib, io
import cv2
from fastapi.testclient import TestClient
from ferlab.cli import main
from ferlab.serve import create_app
assert main(["demo", "--out", "demo"]) == 0  # the bundled default, on ONNX Runtime
photo = cv2.imread("demo/astronaut.annotated.jpg")
writer = cv2.VideoWriter("clip.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 10, (photo.shape[1], photo.shape[0]))
for _ in range(3):
    writer.write(photo)
writer.release()
assert main(["video", "clip.mp4", "--out", "video", "--quiet"]) == 0
assert main(["explain", "demo/astronaut.annotated.jpg", "--out", "explain"]) == 0
with open("evaluate.json", "w") as out, contextlib.redirect_stdout(out):
    assert main(["evaluate", "default", "--data", "fer2013.csv"]) == 0  # on the ONNX twin
with open("models.txt", "w") as out, contextlib.redirect_stdout(out):
    assert main(["models"]) == 0
with open("demo/astronaut.annotated.jpg", "rb") as handle:
    answer = TestClient(create_app()).post("/v1/analyze", files={"file": ("a.jpg", handle, "image/jpeg")})
assert answer.status_code == 200 and len(answer.json()["faces"]) == 1, answer.text
with contextlib.redirect_stderr(io.StringIO()) as err:
    assert main(["demo", "--out", "demo-torch", "--backend", "torch"]) == 2
    assert main(["train", "--data", "missing.csv", "--out", "run"]) == 2
    assert main(["evaluate", "default", "--backend", "torch", "--data", "fer2013.csv"]) == 2
print(err.getvalue())
""", tmp_path)
    assert out.count("needs torch") == 2
    metrics = json.loads((tmp_path / "evaluate.json").read_text())
    assert metrics["engine"] == "onnxruntime" and metrics["test"]["n"] == 70 and "test_shift_tta_accuracy" in metrics
    assert "PyTorch is not installed" in out and "needs torch" in out and 'pip install "ferlab[train]"' in out
    assert len(json.loads((tmp_path / "demo" / "astronaut.json").read_text())["faces"]) == 1
    assert (tmp_path / "video" / "clip.timeline.csv").read_text().count("\n") == 4  # a header and 3 frames
    assert (tmp_path / "explain" / "astronaut.annotated.explain.png").exists()
    listed = (tmp_path / "models.txt").read_text()
    assert "fast-int8" in listed and "architectures to train" not in listed  # those need PyTorch
