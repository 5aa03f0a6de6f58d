"""The emotion of every face in photos: `analyze` for one image, `predict_files` for many.

A record per face is plain JSON-safe data:
``{"box": [x, y, w, h], "detector_score": s, "label": "Happy", "confidence": p,
"probabilities": {"Angry": p0, ..., "Neutral": p6}}``, plus ``"landmarks": {"right_eye": [x, y], ...}``
where the detector gives them (BlazeFace does).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .atomic import atomic_write
from .classifier import ExpressionClassifier, load_model
from .data import EMOTIONS, IMAGE_SIZE
from .detect import (
    ALIGN_MIN_TILT,
    DECODE_MIN_SIDE,
    DEFAULT_DETECTOR,
    DEFAULT_MARGIN,
    Box,
    Face,
    crop_faces,
    detect_faces,
    get_detector,
    to_gray,
)
from .exposure import auto_levels, auto_levels_each
from .imageio import ImageError, ImageSource, decode_image
from .track import LabelHold, SmoothedTracks
from .tta import TTA_VIEWS

# A big video frame (one BlazeFace searches in tiles) is searched whole at least this often, in
# seconds of video; between, only at the model's size and around the faces being tracked, so a
# small new face is found within this time and a big one at once (benchmarks/video_tracks.py).
FULL_SEARCH_S = 0.25
# Faces too small for a 48x48 crop (their crop, margin included, is enlarged) are classified with
# this test-time augmentation, or the model's own if it has more views. On FER2013 faces shrunk
# to 12-40 pixels the mirror image was right more often at every size, 53.93% against 52.98% on
# PublicTest (53.74% against 52.64% on PrivateTest), most of what ten shifted views gain (54.13%)
# at a fifth of their cost, which a video of a crowd pays in every frame
# (benchmarks/small_faces.py --tta).
SMALL_FACE_TTA = "flip"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm", ".avif", ".heic",
                  ".heif"}
# What `ferlab video` searches a folder for; `ferlab predict` names such a file a video.
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}


@dataclass
class Analyzer:
    """A loaded model and detector, reused across images."""

    model: ExpressionClassifier = field(default_factory=load_model)
    detector: str = DEFAULT_DETECTOR
    margin: float | None = None  # None: the detector's measured default
    align_min_tilt: float | None = ALIGN_MIN_TILT  # None: never turn faces upright
    cropped: bool = False  # the images are face crops already: each is one face, the whole image, not searched
    min_face: int = 0  # faces whose box is smaller on a side, in the photo's own pixels, are left out
    small_face_tta: str | None = SMALL_FACE_TTA  # for faces whose crop is enlarged; None: the model's own
    auto_levels: bool = True  # a picture, and a face, too dark or flat is stretched to full contrast (ferlab.exposure)

    def __post_init__(self) -> None:
        get_detector(self.detector)  # refuses an unknown name; loaded once (cached), as first use would
        if self.margin is not None and not 0 <= self.margin <= 1:
            raise ValueError(f"margin must be in [0, 1] (a fraction of the face box, per side), not {self.margin}")
        if self.min_face < 0:
            raise ValueError(f"min_face must be 0 (every face) or more pixels, not {self.min_face}")

    def faces(self, rgb: np.ndarray, factor: int = 1,
              near: list[Box] | None = None) -> tuple[list[Face], np.ndarray]:
        """The faces in ``rgb`` and their 48x48 crops; ``factor``: the photo's pixels per pixel
        of ``rgb`` (`ferlab.imageio.DecodedImage`), by which the boxes are scaled back;
        ``near``: boxes in ``rgb``'s pixels to search around (`ferlab.detect.detect_faces`).
        Faces under ``min_face`` pixels on a side are left out. With ``cropped``, the face is the
        whole image (score 1), squared with its edges repeated. With ``auto_levels``, a
        picture too dark or flat is searched and cropped stretched to full contrast, and so is
        each face crop too dark or flat by itself (`ferlab.exposure`)."""
        if self.auto_levels:
            rgb = auto_levels(rgb)
        gray = to_gray(rgb)
        if self.cropped:
            faces = [Face((0, 0, rgb.shape[1], rgb.shape[0]), 1.0)]
            crops = crop_faces(gray, faces, self.crop_margin, None)
        else:
            faces = [face for face in detect_faces(rgb, self.detector, near)
                     if min(face.box[2:]) * factor >= self.min_face]
            crops = crop_faces(gray, faces, self.crop_margin, self.align_min_tilt)
        if self.auto_levels:
            crops = auto_levels_each(crops)
        return [face.scaled(factor) for face in faces], crops

    @property
    def crop_margin(self) -> float:
        """The margin added to each face box before cropping: none for images that are crops
        already, else ``margin`` or the detector's measured default."""
        if self.cropped:
            return 0.0
        return DEFAULT_MARGIN[self.detector] if self.margin is None else self.margin

    def classify(self, faces: list[Face], crops: np.ndarray) -> np.ndarray:
        """The probabilities of ``crops``, the 48x48 crops of ``faces`` (as `faces` returns them).
        A face whose crop, margin included, is under 48 pixels in the photo's own pixels (so it
        was enlarged) is classified with ``small_face_tta`` unless the model's own TTA has as many
        views; the others as the model is set."""
        small = np.array([min(face.box[2:]) * (1 + 2 * self.crop_margin) < IMAGE_SIZE for face in faces], bool)
        if (self.small_face_tta is None or not small.any()
                or TTA_VIEWS[self.model.tta] >= TTA_VIEWS[self.small_face_tta]):
            return self.model.predict_proba(crops)
        probabilities = np.zeros((len(crops), len(EMOTIONS)), np.float32)
        probabilities[small] = self.model.predict_proba(crops[small], tta=self.small_face_tta)
        if not small.all():
            probabilities[~small] = self.model.predict_proba(crops[~small])
        return probabilities

    def photo_faces(self, image: ImageSource) -> tuple[list[Face], np.ndarray]:
        """`faces` of a photo decoded no larger than detection needs (`detect.DECODE_MIN_SIDE`)."""
        photo = decode_image(image, DECODE_MIN_SIDE)
        return self.faces(photo.rgb, photo.factor)

    def records(self, faces: list[Face], probabilities: np.ndarray) -> list[dict]:
        return [face_record(face, probs) for face, probs in zip(faces, probabilities, strict=True)]

    def analyze(self, image: ImageSource, explain: bool = False) -> list[dict]:
        """One record per face; ``explain``: each also with ``"explanation"``, a picture of where
        its label comes from (`ferlab.explain.explained_records`: about 530 classifier passes a face)."""
        faces, crops = self.photo_faces(image)
        if explain:
            from .explain import explained_records

            return explained_records(self, faces, crops)
        return self.records(faces, self.classify(faces, crops))

    def analyze_frame(self, rgb: np.ndarray, tracks: SmoothedTracks, time_s: float, factor: int = 1) -> list[dict]:
        """The records of one video frame at ``time_s`` seconds, each with its ``"track"`` in
        ``tracks`` (the same id for the same person from frame to frame), probabilities
        smoothed over time and its label held until another expression clearly leads
        (`ferlab.track.SmoothedTracks`): for frames from a source of your own, in time order. ``factor``: as
        for `faces`. A big frame is searched whole every `FULL_SEARCH_S` seconds, and around
        the faces ``tracks`` follows in between."""
        near = None
        if tracks.full_search_s is not None and 0 <= time_s - tracks.full_search_s < FULL_SEARCH_S:
            near = [tuple(v / factor for v in box) for box in tracks.tracker.last_boxes()]
        else:
            tracks.full_search_s = time_s
        faces, crops = self.faces(rgb, factor, near)
        ids, probabilities = tracks.update([face.box for face in faces], self.classify(faces, crops), time_s)
        records = self.records(faces, probabilities)
        for record, track in zip(records, ids, strict=True):
            record["track"] = track
            hold_label(tracks.labels, record)
        return records


def face_record(face: Face, probabilities: np.ndarray) -> dict:
    top = int(np.argmax(probabilities))
    record = {
        "box": [int(v) for v in face.box],
        "detector_score": round(float(face.score), 4),
        "label": EMOTIONS[top],
        "confidence": round(float(probabilities[top]), 4),
        "probabilities": {e: round(float(p), 4) for e, p in zip(EMOTIONS, probabilities, strict=True)},
    }
    if face.landmarks:
        record["landmarks"] = {name: [float(x), float(y)] for name, (x, y) in face.landmarks.items()}
    return record


def hold_label(labels: LabelHold, record: dict) -> None:
    """Give a video face's ``record`` (with its ``"track"``) the label ``labels`` holds for its
    track, and that label's probability as its confidence. Held from the record's own rounded
    probabilities, so that a long video cut into segments (`ferlab.video_segments`), whose
    labels are held again once its tracks are stitched, gets the labels of one pass."""
    index = labels.update(record["track"], np.array(list(record["probabilities"].values())))
    record["label"] = EMOTIONS[index]
    record["confidence"] = record["probabilities"][record["label"]]


# The analyzer of the last `analyze` call, with the model argument and detector it was built
# for: loading a model takes longer than analyzing a photo.
_last_analyzer: tuple[tuple, Analyzer] | None = None


def analyze(image: ImageSource, detector: str = DEFAULT_DETECTOR,
            model: str | os.PathLike | ExpressionClassifier | None = None, explain: bool = False,
            cropped: bool = False) -> list[dict]:
    """One record per face found in ``image`` (a path, encoded bytes, a PIL image or an RGB array).

    ``model``: a loaded classifier, or what `ferlab.load_model` takes; None is the bundled
    default, "default+fast" the two bundled models as one ensemble. ``explain``: each record
    also gets ``"explanation"``: its label and a PNG (data URL) of the face the model saw with
    a map of where that label comes from (`ferlab.explain`). ``cropped``: the image is a face
    crop already, classified whole (`Analyzer.cropped`)."""
    global _last_analyzer
    if isinstance(model, ExpressionClassifier):
        return Analyzer(model, detector, cropped=cropped).analyze(image, explain)
    key = (None if model is None else str(model), detector)
    if _last_analyzer is None or _last_analyzer[0] != key:
        _last_analyzer = (key, Analyzer(load_model(model), detector))
    analyzer = replace(_last_analyzer[1], cropped=True) if cropped else _last_analyzer[1]
    return analyzer.analyze(image, explain)


def expand_inputs(items: Iterable[str], suffixes: Collection[str] = IMAGE_SUFFIXES) -> Iterator[Path]:
    """Files as given, folders searched recursively for files of ``suffixes`` (images), glob
    patterns expanded; "-" reads more of these from standard input, one a line
    (``find ... | ferlab predict -``)."""
    for item in items:
        if item == "-":
            yield from expand_inputs((line.rstrip("\n") for line in sys.stdin if line.strip()), suffixes)
            continue
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{item}: the pattern matches no file")
            yield from (Path(m) for m in matches)
        else:
            yield path


def output_names(paths: Sequence[Path]) -> dict[Path, str]:
    """The name each input's own output files take in an output folder (annotated copies, face
    crops, figures): its file name without the suffix ("IMG_0001"), unless another input has
    that name too (cameras number their files anew); then its path from the folder those
    inputs share ("2024/IMG_0001"), with its suffix where two in one folder differ by it alone
    ("IMG_0001.jpg", "IMG_0001.png"); on different drives, its whole path under the drive's
    letter ("D/photos/IMG_0001"), so that no output overwrites another."""
    absolute = {path: Path(os.path.abspath(path)) for path in paths}
    by_stem: dict[str, set[Path]] = {}
    for path in absolute.values():
        by_stem.setdefault(path.stem, set()).add(path)
    names = {}
    for path, full in absolute.items():
        namesakes = by_stem[full.stem]
        if len(namesakes) == 1:
            names[path] = full.stem
            continue
        relative = _relative_paths(namesakes)
        in_folder = Counter(str(other.with_suffix("")) for other in relative.values())
        mine = relative[full]
        names[path] = str(mine.with_suffix("")) if in_folder[str(mine.with_suffix(""))] == 1 else str(mine)
    return names


def _relative_paths(paths: set[Path]) -> dict[Path, Path]:
    """Each of ``paths`` (absolute) from the folder they share; where they are on different
    drives (Windows), from its drive's letter."""
    try:
        base = os.path.commonpath([path.parent for path in paths])
    except ValueError:
        return {path: Path(path.drive.rstrip(":")) / path.relative_to(path.anchor) for path in paths}
    return {path: path.relative_to(base) for path in paths}


def build_analyzer(model: str | os.PathLike | None = None, tta: str = "none", backend: str = "auto",
                   **options) -> Analyzer:
    """An `Analyzer` of ``load_model(model, tta, backend)``; ``options``: its other fields. As a
    `functools.partial`, what `predict_files` gives each worker process to build its own."""
    return Analyzer(load_model(model, tta=tta, backend=backend), **options)


AnalyzerSource = Analyzer | Callable[[], Analyzer] | None  # an analyzer, a function that builds one, or the default's


def analyzer_builder(analyzer: AnalyzerSource) -> Callable[[], Analyzer]:
    """What each worker process builds its analyzer with: ``analyzer`` when it is a picklable
    function that builds one, the default's `build_analyzer` for None. A built `Analyzer`
    cannot be sent to another process, so it is refused, saying what to give instead."""
    if isinstance(analyzer, Analyzer):
        raise ValueError("with workers, give a function that builds the analyzer "
                         "(functools.partial(build_analyzer, ...)): each process builds its own")
    return analyzer or build_analyzer


def built_analyzer(analyzer: AnalyzerSource) -> Analyzer:
    """``analyzer`` itself, or the one its function (or the default's, for None) builds."""
    return analyzer if isinstance(analyzer, Analyzer) else analyzer_builder(analyzer)()


def predict_files(
    inputs: Iterable[str], analyzer: AnalyzerSource, annotate_dir: str | Path | None = None,
    batch_images: int = 32, progress: bool = True, skip: set[str] = frozenset(), workers: int = 1,
    crops_dir: str | Path | None = None,
) -> Iterator[dict]:
    """One result per input file, in order: ``{"path", "faces": [...]}`` or ``{"path", "error"}``.
    Faces of ``batch_images`` photos are classified together, in one batch. Files whose path
    is in ``skip`` (`done_paths` of an earlier run's results) are left out.

    ``annotate_dir``: each photo is also written there with its faces drawn, as
    ``<name>.annotated.jpg``; ``crops_dir``: each face as the model saw it (48x48 grey, upright)
    as ``<label>/<name>.face<i>.png``, sorted by the label given (after checking or moving
    them, `ferlab photo-accuracy --cropped` measures the model on them). ``<name>`` is the
    photo's `output_names` name.

    ``workers`` > 1: the batches are shared among up to that many processes, one CPU each and
    two batches or more each (starting one takes about as long as analyzing 50 small photos:
    benchmarks/predict_workers.py), so fewer photos stay in this process (`ferlab.parallel`);
    ``analyzer`` may then be a picklable function that builds one, such as
    ``functools.partial(build_analyzer, "default")``, which each process calls once."""
    if batch_images < 1:
        raise ValueError(f"batch_images must be 1 or more, not {batch_images}")
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    every_path = list(expand_inputs(inputs))
    names = output_names(every_path)  # of every input, skipped or not, so that a resumed run names alike
    paths = [path for path in every_path if str(path) not in skip]
    chunks = [[(path, names[path]) for path in paths[start : start + batch_images]]
              for start in range(0, len(paths), batch_images)]
    workers = min(workers, len(chunks) // 2)
    if workers > 1:
        from .parallel import map_in_workers

        results = map_in_workers(analyzer_builder(analyzer), _predict_chunk,
                                 ((chunk, annotate_dir, crops_dir) for chunk in chunks), workers)
    else:
        built = built_analyzer(analyzer)
        results = (_predict_chunk(built, (chunk, annotate_dir, crops_dir)) for chunk in chunks)
    with tqdm(total=len(paths), unit="img", disable=not progress) as bar:
        for chunk_results in results:
            yield from chunk_results
            bar.update(len(chunk_results))


def _predict_chunk(analyzer: Analyzer, work: tuple[list[tuple[Path, str]], str | Path | None, str | Path | None],
                   ) -> list[dict]:
    """The results of one batch of (photo, output name): decoded and searched one by one,
    classified together."""
    chunk, annotate_dir, crops_dir = work
    decoded = []
    for path, name in chunk:
        try:
            photo = decode_image(path, DECODE_MIN_SIDE)
            decoded.append((path, name, photo, *analyzer.faces(photo.rgb, photo.factor)))
        except (ImageError, OSError, cv2.error) as error:
            hint = "; it looks like a video: analyze it with ferlab video" if path.suffix.lower() in VIDEO_SUFFIXES else ""
            decoded.append((path, name, None, f"{error}{hint}", None))
    found = [d for d in decoded if d[2] is not None]
    probabilities = (analyzer.classify([face for d in found for face in d[3]], np.concatenate([d[4] for d in found]))
                     if found else np.zeros((0, 7)))
    results, offset = [], 0
    for path, name, photo, faces, face_crops in decoded:
        if photo is None:
            results.append({"path": str(path), "error": faces})
            continue
        records = analyzer.records(faces, probabilities[offset : offset + len(faces)])
        offset += len(faces)
        if annotate_dir is not None:  # at the size decoded: a big JPEG's copy is smaller
            write_annotated(photo.rgb, records, Path(annotate_dir) / f"{name}.annotated.jpg", photo.factor)
        if crops_dir is not None:
            for i, (record, crop) in enumerate(zip(records, face_crops, strict=True)):
                write_image(crop, Path(crops_dir) / record["label"].lower() / f"{name}.face{i}.png")
        results.append({"path": str(path), "faces": records})
    return results


CSV_HEADER = ["path", "face", "x", "y", "w", "h", "label", "confidence", *EMOTIONS]


def csv_rows(path: str, faces: list[dict]) -> list[list]:
    """A photo's rows of the results CSV (`CSV_HEADER`): one per face, none without a face."""
    return [[path, i, *face["box"], face["label"], face["confidence"], *(face["probabilities"][e] for e in EMOTIONS)]
            for i, face in enumerate(faces)]


def done_paths(out: str | Path, fmt: str) -> set[str]:
    """The paths an earlier run wrote to its results file ``out``, which is first cut back to
    its last complete line (a run killed while writing leaves half a line). In CSV, photos
    without a face or that failed have no row, so they are analyzed again."""
    path = Path(out)
    if not path.exists():
        return set()
    text = path.read_bytes()
    complete = text[: text.rfind(b"\n") + 1]
    if len(complete) < len(text):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    lines = complete.decode("utf-8").splitlines()
    if fmt == "csv":
        rows = list(csv.reader(lines))
        if rows and rows[0] != CSV_HEADER:
            raise ValueError(f"{out}: not a ferlab predict CSV (its header differs), so it cannot be resumed")
        return {row[0] for row in rows[1:] if row}
    try:
        return {json.loads(line)["path"] for line in lines if line.strip()}
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{out}: not ferlab predict JSON lines, so it cannot be resumed") from None


def write_results(results: Iterable[dict], out: str | Path | None, fmt: str,
                  append: bool = False) -> tuple[int, list[dict]]:
    """Write results as JSON lines or CSV (one row per face) to ``out`` or stdout, after what
    ``out`` holds with ``append``. Returns the number of images written and the failed inputs."""
    failed, count = [], 0
    fresh = not (append and out and Path(out).exists() and Path(out).stat().st_size > 0)
    handle = open(out, "w" if fresh else "a", newline="") if out else None  # noqa: SIM115 (stdout or file)
    stream = handle or sys.stdout
    writer = None
    if fmt == "csv":
        writer = csv.writer(stream)
        if fresh:
            writer.writerow(CSV_HEADER)
    try:
        for result in results:
            count += 1
            if "error" in result:
                failed.append(result)
            if writer is None:
                stream.write(json.dumps(result) + "\n")
                continue
            writer.writerows(csv_rows(result["path"], result.get("faces", [])))
    finally:
        if handle:
            handle.close()
    return count, failed


def read_results(out: str | Path, fmt: str) -> list[dict]:
    """The results a run wrote to ``out`` (`write_results`, an earlier one's included after
    ``--resume``), as `predict_files` gives them; from a CSV, only the photos with a face (the
    others have no row), their faces without landmarks."""
    lines = Path(out).read_text().splitlines()
    if fmt != "csv":
        return [json.loads(line) for line in lines if line.strip()]
    photos: dict[str, list[dict]] = {}
    for row in csv.DictReader(lines):
        photos.setdefault(row["path"], []).append({
            "box": [float(row[k]) for k in "xywh"], "label": row["label"], "confidence": float(row["confidence"]),
            "probabilities": {e: float(row[e]) for e in EMOTIONS}})
    return [{"path": path, "faces": faces} for path, faces in photos.items()]


PALETTE = {  # RGB colour per label, for boxes and bars
    "Angry": (220, 50, 47), "Disgust": (133, 153, 0), "Fear": (108, 113, 196), "Happy": (181, 137, 0),
    "Sad": (38, 139, 210), "Surprise": (211, 54, 130), "Neutral": (147, 161, 161),
}


def draw_annotations(rgb: np.ndarray, records: list[dict], factor: int = 1) -> np.ndarray:
    """A copy of ``rgb`` with each face boxed, labelled, its landmarks dotted (where the
    detector gives them), and its seven probabilities as bars. ``factor``: the records'
    pixels per pixel of ``rgb`` (a photo decoded reduced, `ferlab.imageio.DecodedImage`)."""
    canvas = rgb.copy()
    thickness = max(1, round(max(rgb.shape[:2]) / 400))
    font_scale = max(0.4, max(rgb.shape[:2]) / 1200)
    for record in records:
        x, y, w, h = (int(round(v / factor)) for v in record["box"])
        colour = PALETTE[record["label"]]
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness + 1)
        for px, py in record.get("landmarks", {}).values():
            cv2.circle(canvas, (int(round(px / factor)), int(round(py / factor))), thickness + 1, colour, -1)
        text = f"{record['label']} {record['confidence']:.0%}"
        if "track" in record:  # video: which person this is, from frame to frame
            text = f"#{record['track']} {text}"
        cv2.putText(canvas, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness + 1)
        bar_height = max(6, h // 10)
        for row, emotion in enumerate(EMOTIONS):
            top = y + h + 4 + row * (bar_height + 2)
            if top + bar_height >= canvas.shape[0]:
                break
            length = int(w * record["probabilities"][emotion])
            cv2.rectangle(canvas, (x, top), (x + length, top + bar_height), PALETTE[emotion], -1)
            cv2.putText(canvas, emotion[:3], (x + w + 3, top + bar_height), cv2.FONT_HERSHEY_SIMPLEX,
                        font_scale * 0.7, PALETTE[emotion], 1)
    return canvas


def write_annotated(rgb: np.ndarray, records: list[dict], path: Path, factor: int = 1) -> Path:
    return write_image(cv2.cvtColor(draw_annotations(rgb, records, factor), cv2.COLOR_RGB2BGR), path)


def write_image(image: np.ndarray, path: Path) -> Path:
    """``image`` (BGR or grey) written whole to ``path`` or not at all, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"{path}: could not write the image")
    return path
