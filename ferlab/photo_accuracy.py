"""How accurate is ferlab on labelled photos of your own? The whole photo pipeline (decoding,
face detection, crop, classification) over a folder with one sub-folder per expression::

    my-photos/happy/a.jpg, my-photos/happy/b.heic, my-photos/sad/c.png, ...

Sub-folders are named as FER2013's labels (angry, disgust, fear, happy, sad, surprise,
neutral; also anger, disgusted, fearful, happiness, sadness, surprised, normal). Each photo
should show one person; where several faces are found, the largest is the one scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import EMOTION_ALIASES, EMOTIONS
from .metrics import classification_metrics, interval95
from .predict import IMAGE_SUFFIXES, AnalyzerSource, predict_files
from .viewer import write_gallery


def labelled_photos(root: str | Path) -> list[tuple[Path, int]]:
    """(photo, label) for every image under ``root``/<expression>/ (searched recursively)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder (expected one sub-folder per expression: happy/, sad/, ...)")
    photos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = EMOTION_ALIASES.get(folder.name.lower())
        if label is None:
            raise ValueError(f"{folder}: not an expression's name; name sub-folders "
                             + ", ".join(e.lower() for e in EMOTIONS))
        photos += [(p, label) for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not photos:
        raise ValueError(f"{root}: no photos in sub-folders named after expressions (happy/, sad/, ...)")
    return photos


def photo_accuracy(root: str | Path, analyzer: AnalyzerSource, progress: bool = True,
                   workers: int = 1, batch_images: int = 32, gallery: str | Path | None = None) -> dict:
    """Accuracy of ``analyzer`` on the labelled photos under ``root`` (`labelled_photos`): over
    the photos where a face was found, and over all readable photos (a photo without a face
    counting as wrong), each with its 95% interval (a few dozen photos leave a wide one), with
    per-class recall and confusion matrices of the former.
    ``workers``, ``batch_images``: as for `ferlab.predict.predict_files`. ``gallery``: also
    write there a page of the photos with their faces and the label each was expected to have,
    the wrong ones a click away (`ferlab.viewer.write_gallery`)."""
    photos = labelled_photos(root)
    label_of = {str(path): label for path, label in photos}
    results = list(predict_files([str(path) for path, _ in photos], analyzer, progress=progress, workers=workers,
                                 batch_images=batch_images))
    if gallery is not None:
        write_gallery(gallery, results, {path: EMOTIONS[label] for path, label in label_of.items()})
    unreadable = [r for r in results if "error" in r]
    faceless = [r["path"] for r in results if "faces" in r and not r["faces"]]
    found = [r for r in results if r.get("faces")]
    labels = np.array([label_of[r["path"]] for r in found], np.int64)
    probabilities = np.array([[r["faces"][0]["probabilities"][e] for e in EMOTIONS] for r in found]).reshape(-1, 7)
    metrics = classification_metrics(labels, np.log(np.maximum(probabilities, 1e-12))) if found else None
    readable = len(results) - len(unreadable)
    right = int((probabilities.argmax(1) == labels).sum())
    return {
        "folder": str(root),
        "photos": len(results),
        "photos_per_label": {EMOTIONS[c]: int(n) for c, n in enumerate(np.bincount([label for _, label in photos],
                                                                                   minlength=7))},
        "unreadable": [{"path": r["path"], "error": r["error"]} for r in unreadable],
        "without_a_face": faceless,
        "with_several_faces": sum(len(r["faces"]) > 1 for r in found),
        "accuracy_where_a_face_was_found": metrics and metrics["accuracy"],
        "accuracy_where_a_face_was_found_ci95": metrics and metrics["accuracy_ci95"],
        "accuracy_of_all_readable_photos": right / readable if readable else None,
        "accuracy_of_all_readable_photos_ci95": interval95(right / readable, readable) if readable else None,
        "where_a_face_was_found": metrics,
    }
