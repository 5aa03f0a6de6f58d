"""How much accuracy each bundled model keeps on poor pictures: JPEG, blur, noise, dark, flat.

FER2013's faces are clean-ish 48x48 crops; webcams, security cameras and phones in dim rooms
give blurred, noisy, dark or heavily compressed faces. Each PrivateTest face is enlarged 3x
(144 pixels, bicubic: a face as a photo holds it), spoiled at that size, shrunk back to 48x48
by area averaging (as `ferlab.detect.crop_faces` shrinks a face found in a photo) and
classified. "none" is the same round trip with nothing spoiled. Severities are in the
144-pixel face's units; the noise is added in 0-255 grey levels. PrivateTest by default;
--split PublicTest for choices (a model trained with `ferlab train --degrade` is judged there).
The last row is the mean over the spoiled conditions. --normalise instead stretches each face,
before it is classified, to the mean and contrast of a typical Training face: a fix at test time,
without training, whose cost on clean faces the "none" row shows (the bundled `robust` does
the like inside its network, and was trained so). --auto-levels passes each spoiled picture,
at its 144-pixel size, through `ferlab.exposure.auto_levels` and then the 48x48 face through
`auto_levels_each`, as `ferlab.analyze`, `ferlab predict`, `video` and `serve` treat every photo
or frame and the faces cropped from it: one too dark or flat is stretched to full contrast, any
other left alone; with --face-only, the face alone (a face in shadow in a picture that is not).

    python benchmarks/corruptions.py --data ../shared/data/fer2013.csv.gz [--models default fast robust] [--split PublicTest]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.exposure import STRETCH_BELOW, auto_levels, auto_levels_each
from ferlab.hardware import machine_description
from ferlab.metrics import interval95

SCALE = 3  # the face's side in the spoiled picture: 144 pixels


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def spoil(face: np.ndarray) -> np.ndarray:
        encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return spoil


def gaussian_blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda face: cv2.GaussianBlur(face, (0, 0), sigma)


def motion_blur(length: int) -> Callable[[np.ndarray], np.ndarray]:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length  # a sideways shake
    return lambda face: cv2.filter2D(face, -1, kernel)


def noise(sigma: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda face: np.clip(face + rng.normal(0, sigma, face.shape), 0, 255).astype(np.uint8)


def dark(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Under-exposed: every grey level times ``factor``, then 8 bits again (lost shades)."""
    return lambda face: np.round(face * factor).astype(np.uint8)


def low_contrast(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Haze or a flat, back-lit face: grey levels pulled toward mid-grey."""
    return lambda face: np.round(128 + (face.astype(np.float32) - 128) * factor).astype(np.uint8)


CONDITIONS: list[tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = [
    ("none", "", lambda face: face),
    *[("JPEG", f"quality {q}", jpeg(q)) for q in (50, 20, 10, 5)],
    *[("Gaussian blur", f"sigma {s} px", gaussian_blur(s)) for s in (1.5, 3, 6)],
    *[("motion blur", f"{n} px", motion_blur(n)) for n in (9, 17, 33)],
    *[("noise", f"sigma {s}", noise(s)) for s in (10, 20, 40)],
    *[("dark", f"x{f}", dark(f)) for f in (0.5, 0.25, 0.1)],
    *[("low contrast", f"x{f}", low_contrast(f)) for f in (0.5, 0.25)],
]


def normalised(faces: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Each face's grey levels moved and scaled to ``mean`` and ``std``."""
    flat = faces.reshape(len(faces), -1).astype(np.float32)
    spread = np.maximum(flat.std(1, keepdims=True), 1.0)
    stretched = (flat - flat.mean(1, keepdims=True)) / spread * std + mean
    return np.clip(stretched, 0, 255).round().astype(np.uint8).reshape(faces.shape)


def spoiled(faces: np.ndarray, spoil: Callable[[np.ndarray], np.ndarray], stretch_below: int = 0) -> np.ndarray:
    """Each face enlarged, spoiled, with ``stretch_below`` above 0 passed through
    `ferlab.exposure.auto_levels` at that threshold, and shrunk back."""
    size = faces.shape[1] * SCALE
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        picture = spoil(cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC))
        if stretch_below:
            picture = auto_levels(picture, stretch_below)
        out[i] = cv2.resize(picture, faces.shape[1:][::-1], interpolation=cv2.INTER_AREA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", default=["default", "fast", "robust"], help="bundled names or run folders")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    parser.add_argument("--split", default="PrivateTest", choices=["PublicTest", "PrivateTest"])
    parser.add_argument("--normalise", action="store_true", help="each face stretched to a typical face's grey levels")
    parser.add_argument("--auto-levels", action="store_true",
                        help="each spoiled picture, then each face, through ferlab.exposure, as ferlab's photos and "
                             "videos go")
    parser.add_argument("--face-only", action="store_true",
                        help="with --auto-levels: the face alone, as for a face in shadow in a picture that is not dark")
    parser.add_argument("--stretch-below", type=int, default=STRETCH_BELOW, metavar="GREY_LEVELS",
                        help="with --auto-levels: the span under which a picture is stretched (default: %(default)s)")
    args = parser.parse_args()
    splits = train_val_test(load_fer2013(args.data))
    faces, labels = splits[args.split]
    training = splits["Training"][0].reshape(len(splits["Training"][0]), -1).astype(np.float32)
    typical = (float(training.mean(1).mean()), float(training.std(1).mean()))  # about 129 and 54
    models = {name: load_model(name, backend=args.backend) for name in args.models}
    how = f"each face normalised to mean {typical[0]:.1f}, std {typical[1]:.1f}; " if args.normalise else ""
    if args.auto_levels:
        stretched = "each face" if args.face_only else "each picture, then each face,"
        how += f"auto levels ({stretched} spanning under {args.stretch_below} grey levels stretched); "
    print(f"{machine_description()}; {args.split}, {len(faces):,} faces; {how}"
          f"{', '.join(f'{name} on {type(model).__name__}' for name, model in models.items())}\n")
    print("| picture | severity | " + " | ".join(f"{name} | 95% interval | change" for name in models) + " |")
    print("|---|---|" + "---|---|---|" * len(models))
    clean: dict[str, float] = {}
    spoiled_accuracy: dict[str, list[float]] = {name: [] for name in models}
    started = time.perf_counter()
    for kind, severity, spoil in CONDITIONS:
        pictures = spoiled(faces, spoil, args.stretch_below if args.auto_levels and not args.face_only else 0)
        if args.auto_levels:
            pictures = auto_levels_each(pictures, args.stretch_below)
        if args.normalise:
            pictures = normalised(pictures, *typical)
        cells = []
        for name, model in models.items():
            correct = int((model.predict_proba(pictures).argmax(1) == labels).sum())
            accuracy = correct / len(labels)
            clean.setdefault(name, accuracy)  # the first condition is "none"
            if kind != "none":
                spoiled_accuracy[name].append(accuracy)
            low, high = interval95(accuracy, len(labels))
            cells.append(f"{accuracy:.2%} | {low:.1%}-{high:.1%} | {100 * (accuracy - clean[name]):+.1f}")
        print(f"| {kind} | {severity} | " + " | ".join(cells) + " |", flush=True)
    means = {name: float(np.mean(values)) for name, values in spoiled_accuracy.items()}
    print(f"| mean of the {len(CONDITIONS) - 1} spoiled | | " + " | ".join(
        f"{mean:.2%} | | {100 * (mean - clean[name]):+.1f}" for name, mean in means.items()) + " |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
