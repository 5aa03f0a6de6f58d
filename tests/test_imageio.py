import io

import numpy as np
import pytest
from PIL import Image

from ferlab.imageio import MAX_PIXELS, ImageError, decode_image, load_image


def encoded(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16", "1"])
def test_every_common_mode_becomes_rgb_uint8(mode):
    image = Image.new("RGB", (30, 20), (200, 100, 50)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "I;16" else "PNG"
    rgb = load_image(encoded(image, fmt))
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8


def test_rgba_is_flattened_on_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert (load_image(encoded(image)) == 255).all()


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (40, 10), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    rgb = load_image(encoded(image, "JPEG", exif=exif.tobytes()))
    assert rgb.shape == (40, 10, 3)


def test_arrays_and_pil_images_are_accepted():
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.full((5, 6), 65535, np.uint16)).max() == 255
    assert load_image(Image.new("L", (7, 3))).shape == (3, 7, 3)
    assert load_image(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"this is text, not a JPEG", "not an image file"),
        (encoded(Image.new("RGB", (64, 64)), "PNG")[:60], "corrupt or truncated"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path, content, message):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as error:
        load_image(path)
    assert str(error.value).startswith(str(path))


def test_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 100
    bomb = encoded(Image.new("1", (side, side)), "PNG")
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError, match="pixel limit|decompression bomb"):
        load_image(bomb)


def test_wrong_arrays_are_refused():
    with pytest.raises(ImageError, match="expected an image array"):
        load_image(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(ImageError, match="uint8 or uint16"):
        load_image(np.zeros((2, 3), np.float32))


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 10), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    rgb = load_image(buffer.getvalue())
    assert rgb.shape == (10, 20, 3) and rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


def test_a_10000_pixel_square_photo_is_accepted_and_a_bigger_one_refused():
    assert load_image(encoded(Image.new("1", (10_000, 10_000)))).shape == (10_000, 10_000, 3)
    with pytest.raises(ImageError, match="pixel limit"):
        load_image(encoded(Image.new("1", (12_000, 11_000))))


def test_a_big_jpeg_is_decoded_reduced_but_never_below_the_side_asked_for():
    stripes = np.zeros((600, 1000, 3), np.uint8)
    stripes[:, ::50] = 255
    jpeg = encoded(Image.fromarray(stripes), "JPEG")
    for min_side, factor in ((None, 1), (1000, 1), (501, 1), (500, 2), (250, 4), (100, 8), (10, 8)):
        decoded = decode_image(jpeg, min_side)
        assert decoded.factor == factor and (decoded.width, decoded.height) == (1000, 600)
        assert decoded.rgb.shape == (-(-600 // factor), -(-1000 // factor), 3)
    half = decode_image(jpeg, 500).rgb.astype(float)
    whole = load_image(jpeg).astype(float)
    assert np.abs(half - whole.reshape(300, 2, 500, 2, 3).mean((1, 3))).mean() < 8  # the same picture, smaller
    png = decode_image(encoded(Image.fromarray(stripes)), 500)  # other formats: decoded whole, then averaged down
    assert png.factor == 2 and (png.width, png.height) == (1000, 600)
    assert np.abs(png.rgb - stripes.reshape(300, 2, 500, 2, 3).mean((1, 3))).max() <= 1  # 2x2 block means
    mpo = encoded(Image.fromarray(stripes), "MPO", save_all=True, append_images=[Image.fromarray(stripes)])
    assert decode_image(mpo, 500).factor == 2  # a JPEG with extra frames, as some phones and cameras write


def test_a_truncated_big_jpeg_is_refused_when_decoded_reduced_too():
    jpeg = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 1000, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="cut.jpg: corrupt or truncated image"):
        decode_image(jpeg[: len(jpeg) // 2], 300, name="cut.jpg")


def test_a_reduced_photo_turned_by_exif_gives_its_upright_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encoded(Image.new("RGB", (1000, 600), (10, 20, 30)), "JPEG", exif=exif.tobytes()), 300)
    assert decoded.factor == 2 and decoded.rgb.shape == (500, 300, 3) and (decoded.width, decoded.height) == (600, 1000)


def test_heic_and_avif_photos_are_read_upright():
    pytest.importorskip("pillow_heif").register_heif_opener()  # to write one
    image = Image.new("RGB", (40, 20), (200, 100, 50))
    image.paste((0, 0, 0), (30, 0, 40, 5))  # a black top-right corner
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    expected = load_image(encoded(image, "PNG")).transpose(1, 0, 2)[:, ::-1]
    for fmt in ("HEIF", "AVIF"):
        rgb = load_image(encoded(image, fmt, exif=exif.tobytes(), quality=95))
        assert rgb.shape == (40, 20, 3)
        assert np.abs(rgb.astype(int) - expected).mean() < 10, fmt


def test_heic_without_pillow_heif_says_what_to_install(monkeypatch):
    pytest.importorskip("pillow_heif").register_heif_opener()
    heic = encoded(Image.new("RGB", (8, 8)), "HEIF")
    monkeypatch.setitem(__import__("sys").modules, "pillow_heif", None)  # as if not installed
    with pytest.raises(ImageError, match=r"photo.heic: a HEIC/HEIF photo; to read it, install pillow-heif") as error:
        load_image(heic, name="photo.heic")
    assert 'pip install "ferlab[heic]"' in str(error.value)
