"""Loading, validating and caching FER2013.

Accepted inputs (all give the same `FER2013` object):
- Kaggle's ``fer2013.csv`` (header ``emotion,pixels,Usage``), or the same gzipped;
- Kaggle's ``fer2013.tar.gz`` (holding ``fer2013/fer2013.csv``);
- the image-folder layout ``<root>/<split>/<emotion>/*.png|jpg`` where ``<split>`` is
  ``train``, ``val``/``validation`` or ``test``; a file name such as
  ``PublicTest_123.jpg`` overrides the folder's split;
- faces of one's own in ``<root>/<emotion>/`` folders, as ``ferlab predict --crops`` writes
  them: all one pool, from which `split_rows` sets a validation and a test share aside;
- a packed copy written by `write_packed` (``ferlab data pack``): the same pixels, losslessly
  compressed to 54 MB against the CSV.gz's 94 MB, small enough to travel with the
  repository to a lent GPU machine (see ``scripts/gpu_train.sh``).

`write_image_folders` (``ferlab data export``) writes any of them as that image-folder layout,
for tools that read folders of images.

Every CSV row is validated; a bad one raises `DataFormatError` naming file and line.
Parsed arrays are cached under ``$FERLAB_CACHE`` (default ``~/.cache/ferlab``),
keyed by the SHA-256 of the input, so the second load is a single ``np.load``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import lzma
import os
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write, temporary_beside

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
SPLITS = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE
# Mean and standard deviation of all FER2013 pixels scaled to 0..1, measured on the
# real file (`images.mean() / 255`, `images.std() / 255`); models normalise with them.
PIXEL_MEAN = 0.5074
PIXEL_STD = 0.2551
CACHE_VERSION = 1
PACKED_SUFFIX = ".packed.npz"
CARVE_SEED = 0  # draws the validation and test shares of data that lacks them (`split_rows`)

# Folder and file names seen in the wild, mapped to FER2013 names.
EMOTION_ALIASES = {
    "angry": 0, "anger": 0,
    "disgust": 1, "disgusted": 1,
    "fear": 2, "fearful": 2,
    "happy": 3, "happiness": 3,
    "sad": 4, "sadness": 4,
    "surprise": 5, "surprised": 5,
    "neutral": 6, "normal": 6,
}
_SPLIT_FOLDERS = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}


class DataFormatError(ValueError):
    """The input is not FER2013 as ferlab understands it; the message says where and why."""


@dataclass(frozen=True)
class FER2013:
    """FER2013 in memory: ``images`` uint8 (N, 48, 48), ``labels`` int64 (N,),
    ``usage`` int8 (N,) indexing `SPLITS`."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split (``Training``, ``PublicTest`` or ``PrivateTest``)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        mask = self.usage == SPLITS.index(name)
        return self.images[mask], self.labels[mask]

    def subset(self, train_rows: int, eval_rows: int, seed: int = 0) -> FER2013:
        """A random subset: at most ``train_rows`` Training rows and ``eval_rows`` rows of
        each test split (smoke runs, searches, tests)."""
        rng = np.random.default_rng(seed)
        keep = []
        for index, name in enumerate(SPLITS):
            rows = np.flatnonzero(self.usage == index)
            keep.append(rng.permutation(rows)[: train_rows if name == "Training" else eval_rows])
        rows = np.sort(np.concatenate(keep))
        return FER2013(self.images[rows], self.labels[rows], self.usage[rows])


def load_fer2013(path: str | os.PathLike, cache: bool = True) -> FER2013:
    """Load FER2013 from a CSV, CSV.gz, tar.gz or image folder, validated and cached."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder; download fer2013.csv from Kaggle "
            "(Challenges in Representation Learning: Facial Expression Recognition)"
        )
    if path.is_dir():
        return _load_image_folder(path)
    if path.name.endswith(PACKED_SUFFIX):
        return _load_packed(path)
    cache_file = _cache_path(path) if cache else None
    if cache_file is not None and cache_file.exists():
        with np.load(cache_file) as arrays:
            return FER2013(arrays["images"], arrays["labels"], arrays["usage"])
    data = _parse_archive(path)
    if cache_file is not None:
        _write_cache(cache_file, data)
    return data


def _write_cache(cache_file: Path, data: FER2013) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache_file) as tmp:
        np.savez(tmp, images=data.images, labels=data.labels, usage=data.usage)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_path(path: Path) -> Path:
    root = Path(os.environ.get("FERLAB_CACHE", Path.home() / ".cache" / "ferlab"))
    return root / f"fer2013-v{CACHE_VERSION}-{file_sha256(path)[:32]}.npz"


def _med_prediction(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """The median edge detector of lossless JPEG-LS: each pixel guessed from three
    neighbours (int16 arrays). LZMA shrinks FER2013's raw pixels to about 77% of their
    size, and these residuals to 65%."""
    low, high = np.minimum(left, up), np.maximum(left, up)
    return np.where(up_left >= high, low, np.where(up_left <= low, high, left + up - up_left))


def write_packed(data: FER2013, path: str | os.PathLike) -> Path:
    """Write ``data`` losslessly as ``*.packed.npz``: pixel residuals after the median edge
    predictor, LZMA-compressed, beside the labels and splits. Takes a few minutes."""
    path = Path(path)
    if not path.name.endswith(PACKED_SUFFIX):
        raise ValueError(f"{path}: a packed file's name must end in {PACKED_SUFFIX}")
    pixels = np.pad(data.images.astype(np.int16), ((0, 0), (1, 0), (1, 0)))  # zero row and column
    guess = _med_prediction(pixels[:, 1:, :-1], pixels[:, :-1, 1:], pixels[:, :-1, :-1])
    residuals = ((pixels[:, 1:, 1:] - guess) % 256).astype(np.uint8)
    compressed = lzma.compress(residuals.tobytes(), preset=9 | lzma.PRESET_EXTREME)
    with atomic_write(path) as tmp:
        np.savez(tmp, residuals_xz=np.frombuffer(compressed, np.uint8), count=np.array(len(data)),
                 labels=data.labels.astype(np.uint8), usage=data.usage.astype(np.uint8))
    return path


def write_image_folders(data: FER2013, out_dir: str | os.PathLike) -> dict[str, int]:
    """Write ``data`` as PNG files in the image-folder layout this module reads back:
    ``<out_dir>/<split>/<emotion>/<split>_<row>.png`` (``Training/happy/Training_00007.png``;
    the row is the file's, from 0, and the name's prefix keeps the split). The folder is made
    whole or not at all (written beside it, then renamed); it must not exist yet. Returns the
    count of images per split."""
    import cv2  # imported here: the CSV path must not pay for OpenCV

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists: give a new folder, so that no earlier image is mixed in")
    tmp = temporary_beside(out_dir)
    try:
        for split in SPLITS:
            for emotion in EMOTIONS:
                (tmp / split / emotion.lower()).mkdir(parents=True)
        for row, (image, label, usage) in enumerate(zip(data.images, data.labels, data.usage, strict=True)):
            split = SPLITS[usage]
            if not cv2.imwrite(str(tmp / split / EMOTIONS[label].lower() / f"{split}_{row:05d}.png"), image):
                raise OSError(f"{tmp}: cannot write images there")
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return {split: int((data.usage == i).sum()) for i, split in enumerate(SPLITS)}


def _load_packed(path: Path) -> FER2013:
    try:
        with np.load(path) as arrays:
            count = int(arrays["count"])
            residuals = np.frombuffer(lzma.decompress(arrays["residuals_xz"].tobytes()), np.uint8)
            labels, usage = arrays["labels"].astype(np.int64), arrays["usage"].astype(np.int8)
        residuals = residuals.reshape(count, IMAGE_SIZE, IMAGE_SIZE).astype(np.int16)
        consistent = len(labels) == len(usage) == count
        if not consistent or labels.max(initial=0) >= len(EMOTIONS) or usage.max(initial=0) >= len(SPLITS):
            raise ValueError("labels or splits out of range")
    except (OSError, ValueError, KeyError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as error:
        raise DataFormatError(f"{path}: not a packed FER2013 file ({error}); write one with `ferlab data pack`") from error
    # Undo the prediction pixel by pixel, each step over all images at once.
    pixels = np.zeros((count, IMAGE_SIZE + 1, IMAGE_SIZE + 1), np.int16)
    for y in range(IMAGE_SIZE):
        for x in range(IMAGE_SIZE):
            guess = _med_prediction(pixels[:, y + 1, x], pixels[:, y, x + 1], pixels[:, y, x])
            pixels[:, y + 1, x + 1] = (guess + residuals[:, y, x]) % 256
    return FER2013(pixels[:, 1:, 1:].astype(np.uint8), labels, usage)


def _parse_archive(path: Path) -> FER2013:
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(path) as archive:
                members = [m for m in archive.getmembers() if m.name.endswith(".csv")]
                if not members:
                    raise DataFormatError(f"{path}: the archive holds no .csv file")
                member = next((m for m in members if m.name.endswith("fer2013.csv")), members[0])
                handle = archive.extractfile(member)
                assert handle is not None
                text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
                return parse_csv(text, f"{path}:{member.name}")
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as text:
            return parse_csv(text, str(path))
    except (EOFError, gzip.BadGzipFile, tarfile.TarError, UnicodeDecodeError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DataFormatError(f"{path}: cannot read the file ({error}); is it truncated?") from error


def parse_csv(lines: Iterable[str], source: str = "<csv>") -> FER2013:
    """Parse Kaggle's ``emotion,pixels,Usage`` CSV text; ``source`` names it in errors."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise DataFormatError(f"{source}: the file is empty")
    columns = [column.strip().lower() for column in header]
    try:
        emotion_col, pixels_col = columns.index("emotion"), columns.index("pixels")
    except ValueError:
        raise DataFormatError(
            f"{source}:1: header {','.join(header)!r} lacks 'emotion' and 'pixels' columns"
        ) from None
    usage_col = columns.index("usage") if "usage" in columns else None

    images, labels, usage = [], [], []
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(columns):
            raise DataFormatError(f"{source}:{line}: expected {len(columns)} fields, found {len(row)}")
        labels.append(_parse_label(row[emotion_col], source, line))
        images.append(_parse_pixels(row[pixels_col], source, line))
        usage.append(_parse_usage(row[usage_col], source, line) if usage_col is not None else 0)
    if not images:
        raise DataFormatError(f"{source}: the file has a header but no rows")
    return FER2013(
        np.stack(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        np.asarray(labels, dtype=np.int64),
        np.asarray(usage, dtype=np.int8),
    )


def _parse_label(text: str, source: str, line: int) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataFormatError(f"{source}:{line}: emotion {text!r} is not an integer") from None
    if not 0 <= label < len(EMOTIONS):
        raise DataFormatError(f"{source}:{line}: emotion {label} is outside 0..6")
    return label


def _parse_pixels(text: str, source: str, line: int) -> np.ndarray:
    values = text.split()
    if len(values) != N_PIXELS:
        raise DataFormatError(f"{source}:{line}: expected {N_PIXELS} pixel values, found {len(values)}")
    try:
        pixels = np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        raise DataFormatError(f"{source}:{line}: pixel value {bad!r} is not an integer") from None
    if pixels.min() < 0 or pixels.max() > 255:
        bad = pixels[(pixels < 0) | (pixels > 255)][0]
        raise DataFormatError(f"{source}:{line}: pixel value {bad} is outside 0..255")
    return pixels.astype(np.uint8)


def _parse_usage(text: str, source: str, line: int) -> int:
    try:
        return SPLITS.index(text.strip())
    except ValueError:
        raise DataFormatError(
            f"{source}:{line}: Usage {text!r} is not one of {', '.join(SPLITS)}"
        ) from None


def _load_image_folder(root: Path) -> FER2013:
    import cv2  # imported here: the CSV path must not pay for OpenCV

    images, labels, usage = [], [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if folders and all(folder.name.lower() in EMOTION_ALIASES for folder in folders):
        splits = [(root, "Training")]  # <root>/<emotion>/: one pool, split by `split_rows`
    else:
        splits = [(folder, _SPLIT_FOLDERS.get(folder.name.lower())) for folder in folders]
    for split_dir, folder_split in splits:
        if folder_split is None:
            raise DataFormatError(
                f"{split_dir}: unknown folder; expected split folders (train, val, test) each holding emotion "
                "folders, or emotion folders (" + ", ".join(e.lower() for e in EMOTIONS) + ") alone"
            )
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = EMOTION_ALIASES.get(class_dir.name.lower())
            if label is None:
                raise DataFormatError(
                    f"{class_dir}: unknown emotion folder; expected one of "
                    + ", ".join(e.lower() for e in EMOTIONS)
                )
            for file in _image_files(class_dir):
                image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise DataFormatError(f"{file}: not a readable image")
                if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
                    image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
                images.append(image)
                labels.append(label)
                usage.append(SPLITS.index(_split_from_name(file.name) or folder_split))
    if not images:
        raise DataFormatError(f"{root}: no images found under <split>/<emotion>/ or <emotion>/ folders")
    return FER2013(np.stack(images), np.asarray(labels, np.int64), np.asarray(usage, np.int8))


def _image_files(folder: Path) -> Iterator[Path]:
    for file in sorted(folder.iterdir()):
        if file.name.startswith("."):
            continue
        if file.suffix.lower() not in _IMAGE_SUFFIXES:
            raise DataFormatError(f"{file}: not an image file (expected {', '.join(sorted(_IMAGE_SUFFIXES))})")
        yield file


def _split_from_name(name: str) -> str | None:
    prefix = name.split("_", 1)[0]
    return prefix if prefix in SPLITS else None


def dataset_stats(data: FER2013) -> dict:
    """Counts per split and class, exact-duplicate groups and constant images (JSON-safe)."""
    counts = {
        split: {EMOTIONS[c]: int(n) for c, n in enumerate(np.bincount(data.split(split)[1], minlength=7))}
        for split in SPLITS
    }
    flat = data.images.reshape(len(data), -1)
    constant = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    groups = duplicate_groups(data.images)
    cross_split = sum(len(set(data.usage[g].tolist())) > 1 for g in groups)
    conflicting = sum(len(set(data.labels[g].tolist())) > 1 for g in groups)
    return {
        "rows": len(data),
        "counts": counts,
        "distinct_images": int(len(data) - sum(len(g) - 1 for g in groups)),
        "duplicate_groups": len(groups),
        "duplicate_rows": int(sum(len(g) for g in groups)),
        "duplicate_groups_across_splits": int(cross_split),
        "duplicate_groups_with_conflicting_labels": int(conflicting),
        "constant_images": constant.tolist(),
    }


def duplicate_groups(images: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group of byte-identical images (groups of two or more)."""
    keys = [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]
    _, inverse, sizes = np.unique(np.array(keys), return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(sizes)[:-1]
    return [group for group in np.split(order, bounds) if len(group) > 1]


def training_duplicates_mask(data: FER2013, split: str) -> np.ndarray:
    """For the faces of ``split`` (as `split_rows` gives them), True where the same image is
    also a Training face."""
    rows = split_rows(data)
    train_keys = {image.tobytes() for image in data.images[rows["Training"]]}
    return np.array([image.tobytes() in train_keys for image in data.images[rows[split]]], dtype=bool)


def train_val_test(data: FER2013) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three splits used for training, model selection and the final test (`split_rows`)."""
    return {name: (data.images[rows], data.labels[rows]) for name, rows in split_rows(data).items()}


def split_rows(data: FER2013) -> dict[str, np.ndarray]:
    """The rows of ``data`` (from 0, in the file's order) of Training, PublicTest (model
    selection) and PrivateTest (the test).

    Kaggle's layout gives all three. Image-folder layouts often lack a validation split, and
    faces of one's own in emotion folders have neither: then a fixed 10% of Training stands in
    for each missing one, drawn with `CARVE_SEED` whatever a run's seed, so that training,
    `ferlab evaluate` and the reports all set the same faces aside and model selection never
    looks at the test faces.
    """
    rows = {name: np.flatnonzero(data.usage == i) for i, name in enumerate(SPLITS)}
    missing = [split for split in ("PublicTest", "PrivateTest") if len(rows[split]) == 0]
    if missing:
        pool = rows["Training"]
        order = np.random.default_rng(CARVE_SEED).permutation(len(pool))
        share = max(1, len(pool) // 10)
        if len(pool) <= share * len(missing):
            raise DataFormatError(f"{len(pool)} faces are too few to set aside {' and '.join(missing)} faces from")
        for k, split in enumerate(missing):
            rows[split] = pool[order[k * share:(k + 1) * share]]
        rows["Training"] = pool[order[len(missing) * share:]]
    return rows
