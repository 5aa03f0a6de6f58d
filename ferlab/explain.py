"""Where in a face a classifier finds its answer: occlusion sensitivity maps.

    maps = occlusion_maps(model, faces)      # uint8 (N, 48, 48) -> float32 (N, 7, 48, 48)
    maps[np.arange(N), predicted]            # each face's map for the class it was given

A square patch slides over the face, hiding what it covers (filled with the face's mean
grey). A pixel's value for a class is the average fall, over the patches that cover it, in
that class's log-odds (or probability): positive where the face speaks for the class,
negative where it speaks against it. The seven classes' maps come from the same passes.

The method asks the model for nothing but ``predict_proba``, so it explains ONNX twins,
ensembles and test-time augmentation alike. Gradient methods such as Grad-CAM would need
PyTorch and one chosen layer; captum, which also has occlusion, works on PyTorch modules only,
and recognizing expressions does not install PyTorch.

`deletion_curve` checks that the maps show what the model uses for each face: hiding the
pixels a face's map ranks highest must cost more accuracy than hiding as many pixels ranked
by rankings that know nothing of that face.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .atomic import atomic_write, atomic_write_text
from .classifier import ExpressionClassifier, check_faces
from .data import EMOTIONS, IMAGE_SIZE
from .detect import Face
from .imageio import ImageSource
from .predict import Analyzer

# Chosen on PublicTest with benchmarks/explain_patch.py (reports/raw/explain_patch.txt): of
# patches of 4, 6, 8, 12 and 16 pixels (stride half the patch), the one whose maps make
# accuracy fall fastest when their top pixels are hidden. Log-odds and probability maps were
# as faithful; log-odds maps still show structure in faces the model is sure of.
PATCH = 4
STRIDE = 2
UNITS = "log_odds"
DELETION_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


SCORES = {"log_odds": _log_odds, "probability": lambda p: p}


def mean_grey(faces: np.ndarray) -> np.ndarray:
    """Each face's mean pixel (N,) as uint8: what a hidden part of it is filled with."""
    return np.rint(faces.reshape(len(faces), -1).mean(axis=1)).astype(np.uint8)


def patch_corners(patch: int = PATCH, stride: int = STRIDE) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the patches, every ``stride`` pixels; the last row and column
    of patches touch the face's edge, so that every pixel is covered."""
    if not 1 <= patch <= IMAGE_SIZE:
        raise ValueError(f"patch must be 1 to {IMAGE_SIZE} pixels, not {patch}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must be 1 to {patch} pixels (the patch), not {stride}: patches must cover every pixel")
    starts = list(range(0, IMAGE_SIZE - patch + 1, stride))
    if starts[-1] != IMAGE_SIZE - patch:
        starts.append(IMAGE_SIZE - patch)
    return [(y, x) for y in starts for x in starts]


def occlusion_maps(model: ExpressionClassifier, faces, patch: int = PATCH, stride: int = STRIDE, units: str = UNITS,
                   faces_per_pass: int = 16) -> np.ndarray:
    """For each face and each of the 7 classes, how much hiding each part of the face lowers
    that class's score: float32 (N, 7, 48, 48). ``units``: "log_odds" (default), the class's
    log(p / (1 - p)), which keeps telling parts apart where p is near 0 or 1; "probability", p.

    ``model``: anything with ``predict_proba`` (`ferlab.load_model`). The patches of
    ``faces_per_pass`` faces go to ``predict_proba`` together; with the defaults (4-pixel
    patches every 2 pixels) a face costs 530 classifier passes."""
    faces = check_faces(faces)
    if units not in SCORES:
        raise ValueError(f"units must be one of {', '.join(SCORES)}, not {units!r}")
    corners = patch_corners(patch, stride)
    maps = np.zeros((len(faces), 7, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for start in range(0, len(faces), faces_per_pass):
        batch = faces[start : start + faces_per_pass]
        copies = np.repeat(batch[:, None], len(corners) + 1, axis=1)  # copy 0 stays whole
        fill = mean_grey(batch)[:, None, None]
        for k, (y, x) in enumerate(corners, start=1):
            copies[:, k, y : y + patch, x : x + patch] = fill
        probabilities = model.predict_proba(copies.reshape(-1, IMAGE_SIZE, IMAGE_SIZE))
        scores = SCORES[units](probabilities.reshape(len(batch), len(corners) + 1, 7))
        falls = scores[:, :1] - scores[:, 1:]  # (faces, patches, classes)
        maps[start : start + len(batch)] = spread_over_patches(falls.transpose(0, 2, 1), corners, patch)
    return maps


def spread_over_patches(values: np.ndarray, corners: list[tuple[int, int]], patch: int) -> np.ndarray:
    """Per-pixel means of per-patch ``values`` (..., patches) over the patches covering each
    pixel: (..., 48, 48)."""
    total = np.zeros((*values.shape[:-1], IMAGE_SIZE, IMAGE_SIZE), np.float32)
    coverage = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for k, (y, x) in enumerate(corners):
        total[..., y : y + patch, x : x + patch] += values[..., k, None, None]
        coverage[y : y + patch, x : x + patch] += 1
    return total / coverage


def hide_pixels(faces: np.ndarray, pixel_order: np.ndarray, count: int) -> np.ndarray:
    """Copies of ``faces`` with the first ``count`` pixels of each face's ``pixel_order`` (flat
    indices) filled with the face's mean grey, as `occlusion_maps` hides patches."""
    hidden = faces.reshape(len(faces), -1).copy()
    rows = np.arange(len(faces))[:, None]
    hidden[rows, pixel_order[:, :count]] = mean_grey(faces)[:, None]
    return hidden.reshape(faces.shape)


def deletion_curve(model: ExpressionClassifier, faces, labels, maps: np.ndarray,
                   fractions: tuple[float, ...] = DELETION_FRACTIONS, patch: int = PATCH, stride: int = STRIDE,
                   seed: int = 0) -> dict:
    """Accuracy on ``labels`` as the pixels each face's map (N, 48, 48) ranks highest are
    hidden, against two rankings that know nothing of the face: another face's map (shifted
    by one in ``faces``: the same kind of blobs, where faces in general matter) and random
    values per patch spread as the maps are (blobs anywhere). A map that shows what the model
    uses for this face makes accuracy fall fastest. ``area_*`` is each curve's mean accuracy
    over ``fractions``: lower is more faithful."""
    faces = check_faces(faces)
    labels = np.asarray(labels)
    maps = np.asarray(maps)
    if labels.shape != (len(faces),) or maps.shape != faces.shape:
        raise ValueError(f"need one label and one (48, 48) map per face: {len(faces)} faces, "
                         f"labels {labels.shape}, maps {maps.shape}")
    corners = patch_corners(patch, stride)
    random_values = np.random.default_rng(seed).random((len(faces), len(corners)), dtype=np.float32)
    rankings = {"salient": maps, "another_face": np.roll(maps, 1, axis=0),
                "random_patches": spread_over_patches(random_values, corners, patch)}
    curve: dict = {"fractions": list(fractions)}
    for name, ranking in rankings.items():
        order = np.argsort(-ranking.reshape(len(faces), -1), axis=1, kind="stable")
        curve[name] = [float(np.mean(model.predict_proba(hide_pixels(faces, order, round(f * order.shape[1])))
                                     .argmax(axis=1) == labels)) for f in fractions]
        curve[f"area_{name}"] = float(np.mean(curve[name]))
    return curve


def class_maps(faces: np.ndarray, own_maps: np.ndarray, labels, predicted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class, over the faces of that class the model got right: their mean face (7, 48,
    48), the mean of their maps for their predicted (so their own) class, ``own_maps`` (N, 48,
    48), and how many faces there are (7,)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    mean_faces = np.zeros((7, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    mean_maps = np.zeros((7, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    counts = np.zeros(7, np.int64)
    for c in range(7):
        rows = np.flatnonzero((labels == c) & (predicted == c))
        counts[c] = len(rows)
        if len(rows):
            mean_faces[c] = faces[rows].mean(axis=0)
            mean_maps[c] = own_maps[rows].mean(axis=0)
    return mean_faces, mean_maps, counts


# A diverging blue-white-red scale: blue where hiding a part raises the class, red where it lowers it.
_BLUE, _WHITE, _RED = np.array([33, 102, 172.0]), np.array([247, 247, 247.0]), np.array([178, 24, 43.0])


def overlay_image(face: np.ndarray, saliency: np.ndarray, scale: int = 3) -> np.ndarray:
    """An RGB uint8 picture of a 48x48 ``face`` with its (48, 48) map laid over it, ``scale``
    times the size: the stronger a part's value, the more of its colour shows."""
    limit = max(float(np.abs(saliency).max()), 1e-6)
    value = np.clip(saliency / limit, -1, 1)[..., None]
    colour = np.where(value > 0, _WHITE + value * (_RED - _WHITE), _WHITE - value * (_BLUE - _WHITE))
    weight = 0.65 * np.abs(value)
    blended = (1 - weight) * face[..., None].astype(np.float64) + weight * colour
    return np.rint(blended).astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)


def _explain_faces(analyzer: Analyzer, faces: list[Face], crops: np.ndarray, patch: int, stride: int, units: str,
                   max_faces: int | None = None):
    """Records of the faces `Analyzer.faces` found, their probabilities, and the maps of the
    first ``max_faces`` (the largest; all by default)."""
    probabilities = analyzer.classify(faces, crops)
    maps = occlusion_maps(analyzer.model, crops[:max_faces], patch, stride, units)
    return analyzer.records(faces, probabilities), probabilities, maps


def explain_photo(analyzer: Analyzer, image: ImageSource, figure: str | Path, patch: int = PATCH, stride: int = STRIDE,
                  units: str = UNITS) -> list[dict]:
    """The records of `ferlab.predict.Analyzer.analyze` for ``image``, and a figure of each
    face's maps for its two most probable classes written to ``figure`` (none when no face
    is found)."""
    from .report.saliency import face_explanations

    faces, crops = analyzer.photo_faces(image)
    records, probabilities, maps = _explain_faces(analyzer, faces, crops, patch, stride, units)
    if records:
        names = [f"face {i}: box {record['box']}" for i, record in enumerate(records)]
        face_explanations(crops, probabilities, maps, Path(figure), names, units)
    return records


def explained_records(analyzer: Analyzer, faces: list[Face], crops: np.ndarray, patch: int = PATCH,
                      stride: int = STRIDE, units: str = UNITS, max_faces: int | None = None) -> list[dict]:
    """The records of the faces and crops of `Analyzer.faces`, as `Analyzer.analyze` gives
    them, the first ``max_faces`` (the largest) with ``"explanation"``: its label and a PNG (as
    a data URL) of the face the model saw with that label's map over it."""
    records, probabilities, maps = _explain_faces(analyzer, faces, crops, patch, stride, units, max_faces)
    for record, crop, probs, face_maps in zip(records, crops, probabilities, maps, strict=False):
        top = int(np.argmax(probs))
        encoded, png = cv2.imencode(".png", cv2.cvtColor(overlay_image(crop, face_maps[top]), cv2.COLOR_RGB2BGR))
        if not encoded:
            raise OSError("could not encode the explanation as PNG")
        record["explanation"] = {"label": EMOTIONS[top], "units": units,
                                 "image": "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")}
    return records


def explain_split(model: ExpressionClassifier, faces, labels, out_dir: str | Path, patch: int = PATCH,
                  stride: int = STRIDE, units: str = UNITS, progress: bool = True) -> dict:
    """Maps of every face of a labelled split: writes ``saliency_by_class.png`` (where each
    expression's evidence lies, on average) with its data in ``class_maps.npz``,
    ``deletion.png`` and ``explain.json`` (the deletion curves: how faithful the maps are) to
    ``out_dir``, and returns that JSON."""
    from .report.saliency import deletion_curves, saliency_by_class

    faces = check_faces(faces)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predicted = model.predict_proba(faces).argmax(axis=1)
    # Each face's map for its predicted class only, chunk by chunk: the seven maps of every
    # face of a big split would take gigabytes.
    own = np.zeros(faces.shape, np.float32)
    start = time.perf_counter()
    with tqdm(total=len(faces), unit="face", disable=not progress) as bar:
        for first in range(0, len(faces), 256):
            rows = np.arange(first, min(first + 256, len(faces)))
            own[rows] = occlusion_maps(model, faces[rows], patch, stride, units)[np.arange(len(rows)), predicted[rows]]
            bar.update(len(rows))
    seconds = time.perf_counter() - start
    curve = deletion_curve(model, faces, labels, own, patch=patch, stride=stride)
    mean_faces, mean_maps, counts = class_maps(faces, own, labels, predicted)
    with atomic_write(out_dir / "class_maps.npz") as tmp:
        np.savez_compressed(tmp, mean_faces=mean_faces, mean_maps=mean_maps, counts=counts, classes=np.array(EMOTIONS))
    saliency_by_class(mean_faces, mean_maps, counts, out_dir / "saliency_by_class.png", units)
    deletion_curves(curve, out_dir / "deletion.png")
    summary = {
        "faces": len(faces), "accuracy": float(np.mean(predicted == np.asarray(labels))), "units": units,
        "patch": patch, "stride": stride, "seconds_per_face": seconds / max(1, len(faces)),
        "correct_per_class": {name: int(n) for name, n in zip(EMOTIONS, counts, strict=True)}, "deletion": curve,
    }
    atomic_write_text(out_dir / "explain.json", json.dumps(summary, indent=2) + "\n")
    return summary
