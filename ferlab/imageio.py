"""Decoding photos from any source into one form: RGB uint8 (H, W, 3), upright.

Reads every format Pillow reads (JPEG, PNG, WebP, AVIF, TIFF, ...), and HEIC/HEIF, the iPhone's
format, where pillow-heif is installed (`pip install "ferlab[heic]"`). Handles EXIF
orientation, grayscale, palette, RGBA (flattened on white), CMYK and 16-bit images, and refuses
images above `MAX_PIXELS` before decoding them (decompression bombs).
`decode_image` may decode a big JPEG at a half, a quarter or an eighth of its size, which its
decoder does several times faster than the whole.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 120_000_000  # a 10,000 x 10,000 photo passes; anything larger is refused, not decoded
# ISO base media brands of HEIF files with HEVC-coded images (AVIF's brands Pillow reads itself).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}


class ImageError(ValueError):
    """The input is not a usable image; the message names it and says why."""


ImageSource = str | os.PathLike | bytes | np.ndarray | Image.Image


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # upright RGB uint8 (H, W, 3), at 1/factor of the image's size
    factor: int  # image pixels per decoded pixel: 1, or 2, 4 or 8 for a big photo decoded reduced
    width: int  # the image's own size, upright
    height: int


def load_image(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a path, encoded bytes, a PIL image or an array."""
    return decode_image(source, None, name, max_pixels).rgb


def decode_image(source: ImageSource, min_side: int | None, name: str | None = None,
                 max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """The image as `load_image` gives it, except that a photo whose longer side is at least
    twice ``min_side`` comes at the smallest of 1/2, 1/4 and 1/8 of its size that keeps its
    longer side at least ``min_side`` (None: always whole): a JPEG decoded so by libjpeg, other
    formats decoded whole and then averaged down by blocks."""
    if isinstance(source, np.ndarray):
        return _whole(_from_array(source, name or "array", max_pixels))
    if isinstance(source, Image.Image):
        return _whole(_from_pil(source, name or "image", max_pixels))
    if isinstance(source, bytes):
        name = name or "upload"
        if not source:
            raise ImageError(f"{name}: empty file (0 bytes)")
        return _decode(io.BytesIO(source), name, max_pixels, min_side)
    path = Path(source)
    name = name or str(path)
    if not path.is_file():
        raise ImageError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    with open(path, "rb") as handle:
        return _decode(handle, name, max_pixels, min_side)


def _whole(rgb: np.ndarray) -> DecodedImage:
    return DecodedImage(rgb, 1, rgb.shape[1], rgb.shape[0])


def is_heif(head: bytes) -> bool:
    """Whether a file's first 12 bytes are those of a HEIC/HEIF photo."""
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _register_heif(name: str) -> None:
    try:
        import pillow_heif
    except ImportError:
        raise ImageError(f"{name}: a HEIC/HEIF photo; to read it, install pillow-heif "
                         '(pip install "ferlab[heic]"), or convert it to JPEG') from None
    pillow_heif.register_heif_opener()  # applies the photo's own rotation as it decodes


def _decode(handle, name: str, max_pixels: int, min_side: int | None) -> DecodedImage:
    if is_heif(handle.read(12)):
        _register_heif(name)
    handle.seek(0)
    try:
        with warnings.catch_warnings():
            # ferlab applies its own limit below, before decoding; Pillow's stricter warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"{name}: {width}x{height} pixels is over the {max_pixels:,}-pixel limit")
            wanted = next((f for f in (8, 4, 2) if max(width, height) // f >= min_side), 1) if min_side else 1
            if wanted > 1 and image.format in ("JPEG", "MPO"):  # MPO: a phone's or camera's JPEG with extra frames
                # libjpeg scales while it decodes: Pillow picks the factor that keeps at least this size
                image.draft(None, (width // wanted, height // wanted))
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name}: refused as a decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: corrupt or truncated image ({error})") from None
    factor = round(width / image.size[0])  # 1 where the format or the decoder declined
    if factor == 1 and wanted > 1 and image.mode in ("RGB", "RGBA", "L", "LA"):
        # Decoded whole (PNG, HEIC, WebP, ...): averaged down by blocks at once, as detection
        # would (`ferlab.detect.detect_faces`), so that the rest handles a quarter of the pixels.
        image, factor = image.reduce(wanted), wanted
    rgb = _from_pil(image, name, max_pixels)
    turned = (rgb.shape[1], rgb.shape[0]) != image.size  # by its EXIF orientation
    return DecodedImage(rgb, factor, *((height, width) if turned else (width, height)))


def _from_pil(image: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:  # else no copy: 35 ms at 12 megapixels
        image = ImageOps.exif_transpose(image)  # phones store portraits sideways plus a rotation tag
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = pixels.max() or 1.0
        image = Image.fromarray((pixels * (255.0 / top)).astype(np.uint8))  # 16-bit: rescale to 8-bit
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return _from_array(np.asarray(image if image.mode == "RGB" else image.convert("RGB")), name, max_pixels)


def _from_array(array: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ImageError(f"{name}: expected an image array (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) * (255.0 / max(int(array.max()), 1))).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageError(f"{name}: expected uint8 or uint16 pixels, got {array.dtype}")
    if array.shape[0] * array.shape[1] > max_pixels:
        raise ImageError(f"{name}: {array.shape[1]}x{array.shape[0]} pixels is over the {max_pixels:,}-pixel limit")
    return np.ascontiguousarray(array[:, :, :3])
