"""Face detection with detectors that ship inside PyPI wheels (nothing downloaded at run time),
and cropping faces the way FER2013 framed them.

- ``haar``: OpenCV's frontal-face Haar cascade (in opencv-python-headless).
- ``hog``: dlib's HOG + linear SVM frontal-face detector (compiled into dlib-bin).

Both return boxes only. `crop_faces` turns each box into a square 48x48 grayscale crop,
enlarged by ``margin`` on every side to match FER2013's framing (see
``benchmarks/detect_margin.py`` for how the default was measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from .data import IMAGE_SIZE

# HOG is the default: on this project's 2-core CPU it is about 3x faster than the Haar cascade
# on a 640x480 photo and gave fewer false detections; it needs faces of about 80 px or more,
# so crowds and small faces want "haar" (benchmarks/detect_margin.py, benchmarks/photo_latency.py).
DEFAULT_DETECTOR = "hog"
# Fraction of the box side added on each side of the detector's box before resizing to 48x48,
# chosen on PublicTest faces re-found by each detector (benchmarks/detect_margin.py).
DEFAULT_MARGIN = {"haar": 0.0, "hog": 0.05}
MAX_DETECT_SIDE = 1024  # larger photos are downscaled for detection; boxes are mapped back


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in the original image
    score: float


class HaarDetector:
    name = "haar"

    def __init__(self, min_size: int = 24):
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.min_size = min_size

    def __call__(self, gray: np.ndarray) -> list[Face]:
        boxes, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size), outputRejectLevels=True
        )
        return [Face(tuple(int(v) for v in box), float(w)) for box, w in zip(boxes, np.ravel(weights), strict=True)]


class HogDetector:
    name = "hog"

    def __init__(self, upsample: int = 0, threshold: float = 0.2):
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.threshold = threshold  # SVM margin; dlib's own 0.0 lets textured patches through

    def __call__(self, gray: np.ndarray) -> list[Face]:
        rects, scores, _ = self.detector.run(gray, self.upsample, self.threshold)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = max(rect.left(), 0), max(rect.top(), 0)
            x1, y1 = min(rect.right(), gray.shape[1]), min(rect.bottom(), gray.shape[0])
            faces.append(Face((x0, y0, x1 - x0, y1 - y0), float(score)))
        return faces


DETECTORS = {"haar": HaarDetector, "hog": HogDetector}


@cache
def get_detector(name: str = DEFAULT_DETECTOR):
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name]()


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def detect_faces(gray: np.ndarray, detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """Faces in a grayscale image, largest first. Big photos are searched at reduced size."""
    scale = min(1.0, MAX_DETECT_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    faces = get_detector(detector)(small)
    if scale < 1:
        faces = [Face(tuple(int(round(v / scale)) for v in f.box), f.score) for f in faces]
    return sorted(faces, key=lambda f: -f.box[2] * f.box[3])


def crop_faces(gray: np.ndarray, faces: list[Face], margin: float) -> np.ndarray:
    """Square crops around each box, grown by ``margin`` x side on each side, as uint8 (N, 48, 48).
    Parts of a crop outside the image are filled by replicating the border."""
    crops = np.zeros((len(faces), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    height, width = gray.shape
    for i, face in enumerate(faces):
        x, y, w, h = face.box
        side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
        x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
        x1, y1 = x0 + side, y0 + side
        region = gray[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        region = cv2.copyMakeBorder(region, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0),
                                    cv2.BORDER_REPLICATE)
        crops[i] = cv2.resize(region, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return crops
