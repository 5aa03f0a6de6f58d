"""Property-based tests of the CSV parser: valid files round-trip, broken rows only ever
raise DataFormatError naming the line."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ferlab.data import SPLITS, DataFormatError, load_fer2013, parse_csv

from .conftest import csv_text

rows = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 255), st.integers(0, 255), st.sampled_from(SPLITS)),
    min_size=1, max_size=6,
)


def build(spec):
    images = np.stack([np.full((48, 48), a, np.uint8) for _, a, _, _ in spec])
    for image, (_, _, b, _) in zip(images, spec, strict=True):
        image[0, 0] = b
    labels = np.array([label for label, *_ in spec])
    return images, labels, [usage for *_, usage in spec]


@settings(max_examples=40, deadline=None)
@given(rows)
def test_valid_csv_round_trips(spec):
    images, labels, usage = build(spec)
    data = parse_csv(csv_text(images, labels, usage).splitlines())
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert [SPLITS[u] for u in data.usage] == usage


@settings(max_examples=60, deadline=None)
@given(rows, st.data())
def test_any_corrupted_row_is_a_data_format_error_naming_its_line(spec, draw):
    images, labels, usage = build(spec)
    lines = csv_text(images, labels, usage).splitlines()
    victim = draw.draw(st.integers(1, len(lines) - 1))
    label, pixels, split = lines[victim].split(",")
    values = pixels.split()
    kind = draw.draw(st.sampled_from(["drop", "add", "text", "big", "label", "usage", "field"]))
    if kind == "drop":
        values = values[: draw.draw(st.integers(0, 2303))]
    elif kind == "add":
        values += ["0"] * draw.draw(st.integers(1, 5))
    elif kind == "text":
        values[draw.draw(st.integers(0, 2303))] = draw.draw(st.sampled_from(["x", "1.5", "", "--", "0x10"])) or "nan"
    elif kind == "big":
        values[draw.draw(st.integers(0, 2303))] = str(draw.draw(st.integers(256, 10**12)))
    elif kind == "label":
        label = draw.draw(st.sampled_from(["7", "-1", "happy", "", "3.0"]))
    elif kind == "usage":
        split = draw.draw(st.sampled_from(["Test", "training", "", "Validation"]))
    lines[victim] = f"{label},{' '.join(values)},{split}" + (",extra" if kind == "field" else "")
    try:
        parse_csv(lines, "f.csv")
    except DataFormatError as error:
        assert str(error).startswith(f"f.csv:{victim + 1}: ")
    else:
        raise AssertionError(f"corruption {kind!r} was accepted")


def test_bom_crlf_and_reordered_columns_load(tmp_path):
    images, labels, usage = build([(3, 10, 20, "Training"), (5, 30, 40, "PrivateTest")])
    text = csv_text(images, labels, usage)
    reordered = "\n".join(f"{u},{e},{p}" for e, p, u in (line.split(",") for line in text.splitlines())) + "\n"
    for name, content in {
        "bom.csv": "\ufeff" + text, "crlf.csv": text.replace("\n", "\r\n"), "reordered.csv": reordered,
    }.items():
        path = tmp_path / name
        path.write_bytes(content.encode())
        data = load_fer2013(path)
        np.testing.assert_array_equal(data.images, images)
        assert data.labels.tolist() == [3, 5]
