import gzip
import tarfile
import time

import cv2
import numpy as np
import pytest

from ferlab.data import (
    EMOTIONS,
    FER2013,
    DataFormatError,
    dataset_stats,
    load_fer2013,
    parse_csv,
    split_rows,
    train_val_test,
    training_duplicates_mask,
    write_packed,
)

from .conftest import csv_text, run_at_once, synthetic_faces


def test_csv_loads_all_splits(tiny_csv):
    data = load_fer2013(tiny_csv)
    assert data.images.shape == (280, 48, 48) and data.images.dtype == np.uint8
    assert [len(data.split(s)[1]) for s in ("Training", "PublicTest", "PrivateTest")] == [140, 70, 70]
    images, labels = synthetic_faces(280)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)


def test_gzip_and_tar_give_the_same_data(tiny_csv, tmp_path):
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(tiny_csv.read_bytes()))
    tar = tmp_path / "fer2013.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        archive.add(tiny_csv, arcname="fer2013/fer2013.csv")
    reference = load_fer2013(tiny_csv)
    for path in (gz, tar):
        loaded = load_fer2013(path)
        np.testing.assert_array_equal(loaded.images, reference.images)
        np.testing.assert_array_equal(loaded.usage, reference.usage)


def test_second_load_comes_from_the_cache(tiny_csv, tmp_path):
    load_fer2013(tiny_csv)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    start = time.perf_counter()
    again = load_fer2013(tiny_csv)
    assert time.perf_counter() - start < 1.0
    assert len(again) == 280


def test_writers_racing_to_fill_the_cache_all_get_the_data(tiny_csv, tmp_path, monkeypatch):
    # as the two ranks of a torchrun job do: each starts on an empty cache at the same moment
    def load() -> None:
        assert len(load_fer2013(tiny_csv)) == 280

    errors: list[Exception] = []
    for round_ in range(10):
        monkeypatch.setenv("FERLAB_CACHE", str(tmp_path / f"cache{round_}"))
        errors += run_at_once([load, load])
    assert not errors, errors[:2]
    assert not list(tmp_path.glob("cache*/*.tmp*"))


def test_image_folder_layout_with_split_in_file_names(tmp_path):
    images, labels = synthetic_faces(21)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        split_dir = "train" if i < 14 else "test"
        prefix = "Training" if i < 7 else "PublicTest" if i < 14 else "PrivateTest"
        folder = tmp_path / "faces" / split_dir / EMOTIONS[label].lower()
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{prefix}_{i}.png"), image)
    data = load_fer2013(tmp_path / "faces")
    assert sorted(np.bincount(data.usage).tolist()) == [7, 7, 7]
    train_images, train_labels = data.split("Training")
    assert sorted(train_labels.tolist()) == list(range(7))
    np.testing.assert_array_equal(np.sort(data.images.reshape(21, -1), 0), np.sort(images.reshape(21, -1), 0))


def test_image_folder_without_validation_split_holds_out_training(tmp_path):
    images, labels = synthetic_faces(40)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "faces" / ("train" if i < 30 else "test") / EMOTIONS[label].lower()
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.jpg"), image)
    splits = train_val_test(load_fer2013(tmp_path / "faces"))
    assert [len(splits[s][1]) for s in ("Training", "PublicTest", "PrivateTest")] == [27, 3, 10]


def test_faces_of_ones_own_in_emotion_folders_get_validation_and_test_shares(tmp_path):
    # as `ferlab predict --crops DIR` writes them: DIR/<emotion>/NAME.face0.png, no split folders
    images, labels = synthetic_faces(50)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "mine" / EMOTIONS[label].lower()
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"photo{i}.face0.png"), image)
    data = load_fer2013(tmp_path / "mine")
    rows = split_rows(data)
    assert [len(rows[s]) for s in ("Training", "PublicTest", "PrivateTest")] == [40, 5, 5]
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(50))  # each face in one split
    np.testing.assert_array_equal(split_rows(data)["PrivateTest"], rows["PrivateTest"])  # the same faces every time

    with pytest.raises(DataFormatError, match="too few to set aside"):
        split_rows(FER2013(data.images[:1], data.labels[:1], data.usage[:1]))


def test_a_folder_mixing_splits_and_emotions_is_refused(tmp_path):
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "sad").mkdir()
    with pytest.raises(DataFormatError, match="sad: unknown folder; expected split folders"):
        load_fer2013(tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("3,{short},Training", "expected 2304 pixel values, found 2303"),
        ("3,{long},Training", "expected 2304 pixel values, found 2305"),
        ("3,{bad},Training", "pixel value 'x' is not an integer"),
        ("3,{big},Training", "pixel value 256 is outside 0..255"),
        ("3,{neg},Training", "pixel value -1 is outside 0..255"),
        ("7,{ok},Training", "emotion 7 is outside 0..6"),
        ("happy,{ok},Training", "emotion 'happy' is not an integer"),
        ("3,{ok},Validation", "Usage 'Validation' is not one of"),
        ("3,{ok}", "expected 3 fields, found 2"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    ok = " ".join(["0"] * 2304)
    row = row.format(
        ok=ok,
        short=" ".join(["0"] * 2303),
        long=" ".join(["0"] * 2305),
        bad=" ".join(["0"] * 2303 + ["x"]),
        big=" ".join(["0"] * 2303 + ["256"]),
        neg=" ".join(["-1"] + ["0"] * 2303),
    )
    path = tmp_path / "bad.csv"
    path.write_text(f"emotion,pixels,Usage\n3,{ok},Training\n{row}\n")
    with pytest.raises(DataFormatError) as error:
        load_fer2013(path)
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"emotion,pixels,Usage\n", "no rows"), (b"a,b,c\n1,2,3\n", "lacks 'emotion'")],
)
def test_empty_and_headerless_files(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message):
        load_fer2013(path)


def test_truncated_gzip_is_a_clear_error(tiny_csv, tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(tiny_csv.read_bytes())[:5000])
    with pytest.raises(DataFormatError, match="truncated"):
        load_fer2013(path)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="Kaggle"):
        load_fer2013(tmp_path / "nope.csv")


def test_unknown_emotion_folder(tmp_path):
    (tmp_path / "train" / "bored").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="unknown emotion folder"):
        load_fer2013(tmp_path)


def test_stats_find_duplicates_and_blank_images():
    images, labels = synthetic_faces(7)
    images[3] = images[0]
    images[5] = 0
    usage = ["Training"] * 4 + ["PrivateTest"] * 3
    data = parse_csv(csv_text(images, labels, usage).splitlines())
    stats = dataset_stats(data)
    assert stats["duplicate_groups"] == 1 and stats["duplicate_rows"] == 2
    assert stats["duplicate_groups_with_conflicting_labels"] == 1
    assert stats["constant_images"] == [5]
    assert stats["distinct_images"] == 6
    images[4] = images[1]
    data = parse_csv(csv_text(images, labels, usage).splitlines())
    assert training_duplicates_mask(data, "PrivateTest").tolist() == [True, False, False]


@pytest.mark.real_data
def test_real_fer2013_matches_its_published_counts(real_fer2013):
    stats = dataset_stats(real_fer2013)
    assert stats["rows"] == 35887
    assert stats["counts"]["Training"]["Disgust"] == 436
    assert sum(stats["counts"]["PrivateTest"].values()) == 3589
    assert stats["distinct_images"] == 34034
    assert len(stats["constant_images"]) == 12


def test_truncated_tar_is_a_clear_error(tiny_csv, tmp_path):
    tar = tmp_path / "fer2013.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        archive.add(tiny_csv, arcname="fer2013/fer2013.csv")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="cut.tar.gz"):
        load_fer2013(cut)


def test_non_image_file_in_a_class_folder(tmp_path):
    folder = tmp_path / "train" / "happy"
    folder.mkdir(parents=True)
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="readme.txt: not an image file"):
        load_fer2013(tmp_path)


def test_unreadable_image_in_a_class_folder(tmp_path):
    folder = tmp_path / "train" / "happy"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    with pytest.raises(DataFormatError, match="broken.png: not a readable image"):
        load_fer2013(tmp_path)


def test_packed_copy_is_lossless_and_smaller(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv, cache=False)
    noisy = data.images.copy()
    noisy[0] = np.random.default_rng(0).integers(0, 256, noisy[0].shape)  # every residual value occurs
    data = type(data)(noisy, data.labels, data.usage)
    packed = write_packed(data, tmp_path / "fer.packed.npz")
    again = load_fer2013(packed)
    for field in ("images", "labels", "usage"):
        assert np.array_equal(getattr(again, field), getattr(data, field))
        assert getattr(again, field).dtype == getattr(data, field).dtype
    assert packed.stat().st_size < data.images.nbytes
    with pytest.raises(ValueError, match="must end in .packed.npz"):
        write_packed(data, tmp_path / "fer.npz")
    broken = tmp_path / "broken.packed.npz"
    broken.write_bytes(packed.read_bytes()[:2000])
    with pytest.raises(DataFormatError, match="not a packed FER2013 file"):
        load_fer2013(broken)


def test_exported_image_folders_load_back_as_the_same_data(tiny_csv, tmp_path, capsys):
    from ferlab.cli import main

    data = load_fer2013(tiny_csv, cache=False)
    out = tmp_path / "fer2013-images"
    assert main(["data", "export", str(tiny_csv), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: Training ")
    first = np.flatnonzero(data.usage == 0)[0]
    assert (out / "Training" / EMOTIONS[data.labels[first]].lower() / f"Training_{first:05d}.png").is_file()
    again = load_fer2013(out, cache=False)

    def rows(d):
        return sorted(zip((image.tobytes() for image in d.images), d.labels.tolist(), d.usage.tolist(), strict=True))

    assert rows(again) == rows(data)  # every image, label and split, losslessly
    assert main(["data", "export", str(tiny_csv), "--out", str(out)]) == 2  # nothing mixed into an earlier export
    assert "exists: give a new folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []
