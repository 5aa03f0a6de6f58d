"""Would BlazeFace run faster on several pictures at once (a video frame's tiles and windows, or
several frames), and with how many threads?

The bundled BlazeFace ONNX files take one picture a call (batch dimension 1, resize sizes and
reshapes fixed to it). This makes a copy whose batch dimension is free (the upsampling layers
scale by 2 instead of naming their output size; reshapes keep the batch), checks that it gives
the same outputs, and times, per picture and for each thread count, one call on a batch of N
random pictures against N calls on one picture each.

Then, for each detector and thread count, alternately ``--rounds`` times: the median time of
`ferlab.predict.Analyzer.analyze` on a 640x480 photo with one face (the astronaut), as
`photo_latency.py` times it, with the detector's session given that many threads.

    python benchmarks/blazeface_batch.py [--batches 1 4 8] [--threads 1 2] [--repeats 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from ferlab.detect import BlazeFaceDetector
from ferlab.hardware import machine_description


def free_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` that takes any batch size."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del model.graph.value_info[:]  # shapes inferred for batch 1
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = 0  # keep the input's batch size
                initializers[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
        elif node.op_type == "Resize":  # (roi, scales, sizes): scale by 2, whatever the batch
            scales = f"{node.name}_scales"
            model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales))
            del node.input[3:]
            node.input[2] = scales
    return model


def per_picture_ms(session: ort.InferenceSession, pictures: np.ndarray, repeats: int, batched: bool) -> float:
    def run() -> None:
        if batched:
            session.run(None, {"input": pictures})
        else:
            for picture in pictures:
                session.run(None, {"input": picture[None]})

    for _ in range(3):
        run()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats / len(pictures) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rows = []
    for filename, size, *_ in BlazeFaceDetector.VARIANTS.values():
        model = onnx.load_from_string((resources.files("ferlab") / "assets" / filename).read_bytes())
        pictures = np.random.default_rng(0).uniform(-1, 1, (max(args.batches), 3, size, size)).astype(np.float32)
        for threads in args.threads:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            one = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            free = ort.InferenceSession(free_batch(model).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
            batched_outputs = free.run(None, {"input": pictures})
            for i, picture in enumerate(pictures):
                for mine, theirs in zip(one.run(None, {"input": picture[None]}), batched_outputs, strict=True):
                    np.testing.assert_allclose(theirs[i], mine[0], atol=1e-4)
            for batch in args.batches:
                rows.append({"model": filename, "threads": threads, "batch": batch,
                             "one_call_ms": round(per_picture_ms(free, pictures[:batch], args.repeats, True), 2),
                             "calls_of_one_ms": round(per_picture_ms(one, pictures[:batch], args.repeats, False), 2)})
                print(json.dumps(rows[-1]), flush=True)
    photos = []
    for _ in range(args.rounds):
        for name in ("blazeface_short", "blazeface"):
            for threads in args.threads:
                photos.append({"detector": name, "threads": threads, "photo_ms": photo_ms(name, threads)})
                print(json.dumps(photos[-1]), flush=True)
    print(json.dumps({"machine": machine_description(), "rows": rows, "photos": photos}, indent=1))


def photo_ms(detector: str, threads: int, runs: int = 60) -> float:
    """Median milliseconds of analysing a 640x480 photo with one face, the detector on ``threads``."""
    import cv2

    from ferlab.detect import get_detector
    from ferlab.imageio import load_image
    from ferlab.predict import Analyzer

    face = load_image(resources.files("ferlab") / "assets" / "astronaut.jpg")
    photo = np.full((480, 640, 3), 200, np.uint8)
    photo[:, 64:576] = cv2.resize(face, (512, 480))
    analyzer = Analyzer(detector=detector)
    found = get_detector(detector)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    filename = BlazeFaceDetector.VARIANTS["short" if detector == "blazeface_short" else "full"][0]
    model = (resources.files("ferlab") / "assets" / filename).read_bytes()
    found.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    for _ in range(5):
        analyzer.analyze(photo)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        analyzer.analyze(photo)
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 2)


if __name__ == "__main__":
    main()
