import numpy as np
import pytest

from ferlab.atomic import atomic_write

from .conftest import run_at_once


def test_the_file_appears_whole_and_the_temporary_file_goes(tmp_path):
    target = tmp_path / "history.json"
    with atomic_write(target) as tmp:
        tmp.write_text("[1, 2]")
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and not target.exists()
    assert target.read_text() == "[1, 2]"
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_an_error_while_writing_keeps_the_previous_file(tmp_path):
    target = tmp_path / "history.json"
    target.write_text("saved")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as tmp:
        tmp.write_text("half of")
        raise KeyboardInterrupt
    assert target.read_text() == "saved"
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_numpy_keeps_the_name_it_is_given(tmp_path):
    with atomic_write(tmp_path / "cache.npz") as tmp:
        np.savez(tmp, x=np.arange(3))
    assert np.load(tmp_path / "cache.npz")["x"].tolist() == [0, 1, 2]


def test_concurrent_writers_of_one_file_do_not_collide(tmp_path):
    target = tmp_path / "shared.txt"

    def writer(text: str):
        def write() -> None:
            for _ in range(50):
                with atomic_write(target) as tmp:
                    tmp.write_text(text * 1000)
        return write

    errors = run_at_once([writer(str(i)) for i in range(4)])
    assert not errors, errors[:2]
    assert target.read_text() in {str(i) * 1000 for i in range(4)}
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]
