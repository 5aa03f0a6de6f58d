"""Pictures too dark or too flat (a dim room, a night-time camera, haze), stretched to the full
range of grey levels before their faces are searched and read, as a camera's auto exposure would.

FER2013's faces use most of the 0-255 range (99% of PublicTest's span at least 115 grey levels
between their 0.5th and 99.5th percentiles); a face in a quarter of the light spans a quarter
of it, and the default model loses 18-20 points on such faces; the detector misses a face at 3% of
the light. A picture whose span is under `STRETCH_BELOW` is mapped linearly onto 0-255 (the
same map on each colour channel, so colours keep their hue); any other picture is left alone.
`ferlab.predict.Analyzer` stretches the picture so (its faces are found in it) and then each
48x48 face it crops (`auto_levels_each`), so a face in shadow within a bright picture is too.
Measured with `benchmarks/corruptions.py --auto-levels` (reports/benchmarks.md, "Auto levels"):
the default keeps 70.6-71.0% PrivateTest accuracy on faces at a tenth to a half of the light or
contrast, where it kept 17-64%, and 71.08% on clean faces (71.22% without).
"""

from __future__ import annotations

import cv2
import numpy as np

# Chosen on PublicTest (reports/benchmarks.md, "Auto levels"): 96 left faces at half the light
# nearly as they were, 160 cost 3 clean faces, 128 one.
STRETCH_BELOW = 128
# Percentiles of the span: a few specks of light (a lamp, a reflection) do not set it.
DARKEST, BRIGHTEST = 0.5, 99.5
# Pixels looked at to measure the span: about this many, evenly spread (a 12-megapixel photo in
# under a millisecond).
SAMPLE_PIXELS = 65_536


def grey_span(rgb: np.ndarray) -> tuple[int, int]:
    """The 0.5th and 99.5th percentiles of an RGB (or grayscale) uint8 picture's grey levels."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / SAMPLE_PIXELS)))
    sample = rgb[::step, ::step]
    gray = sample if sample.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(sample), cv2.COLOR_RGB2GRAY)
    cumulative = np.cumsum(np.bincount(gray.ravel(), minlength=256)) / gray.size
    low = int(np.searchsorted(cumulative, DARKEST / 100))
    high = int(np.searchsorted(cumulative, BRIGHTEST / 100))
    return low, high


def auto_levels(rgb: np.ndarray, stretch_below: int = STRETCH_BELOW) -> np.ndarray:
    """``rgb`` with its grey levels stretched onto 0-255 when their span is under
    ``stretch_below``; otherwise (and for a blank picture, with nothing to stretch) ``rgb`` itself."""
    low, high = grey_span(rgb)
    if not 2 <= high - low < stretch_below:
        return rgb
    levels = (np.arange(256, dtype=np.float32) - low) * (255.0 / (high - low))
    return cv2.LUT(rgb, np.clip(np.round(levels), 0, 255).astype(np.uint8))


def auto_levels_each(faces: np.ndarray, stretch_below: int = STRETCH_BELOW) -> np.ndarray:
    """`auto_levels` on each grayscale face of ``faces`` (N, H, W) by itself: a face in shadow or
    against the light, within a picture that is not dark or flat as a whole, is stretched too."""
    return np.stack([auto_levels(face, stretch_below) for face in faces]) if len(faces) else faces
