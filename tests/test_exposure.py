import numpy as np
from PIL import Image

from ferlab.exposure import STRETCH_BELOW, auto_levels, grey_span


def test_a_well_exposed_picture_is_left_alone(astronaut):
    photo = np.asarray(Image.open(astronaut).convert("RGB"))
    assert grey_span(photo)[1] - grey_span(photo)[0] >= STRETCH_BELOW
    assert auto_levels(photo) is photo


def test_a_dark_picture_is_stretched_to_full_contrast_keeping_its_colours(astronaut):
    photo = np.asarray(Image.open(astronaut).convert("RGB")).astype(np.float32)
    dark = np.round(photo * 0.25).astype(np.uint8)
    low, high = grey_span(dark)
    assert high - low < STRETCH_BELOW
    stretched = auto_levels(dark)
    assert stretched.dtype == np.uint8 and stretched.shape == dark.shape
    new_low, new_high = grey_span(stretched)
    assert new_low <= 2 and new_high >= 250
    # The same map on every channel: where the dark picture's channels were in order, they still are.
    order = np.argsort(dark.reshape(-1, 3), axis=1, kind="stable")
    bright = dark.reshape(-1, 3).max(1) > 20
    same = (np.take_along_axis(stretched.reshape(-1, 3), order, 1)[bright] ==
            np.sort(stretched.reshape(-1, 3), 1)[bright]).all(1)
    assert same.mean() > 0.99


def test_a_hazy_picture_is_stretched_and_specks_of_light_do_not_stop_it():
    rng = np.random.default_rng(0)
    hazy = rng.integers(100, 160, (120, 160), dtype=np.uint8)  # grey levels crowded around mid-grey
    hazy[:5, :5] = 255  # a lamp: 25 pixels in 19,200
    stretched = auto_levels(hazy)
    assert grey_span(stretched)[0] <= 5 and grey_span(stretched)[1] >= 250


def test_a_blank_picture_stays_blank():
    for level in (0, 128, 255):
        blank = np.full((40, 60, 3), level, np.uint8)
        assert auto_levels(blank) is blank
