#!/usr/bin/env bash
# Measures again the accuracy figures that README.md and docs/photos.md quote for the bundled models, after
# `ferlab package-model` has replaced one: both engines, the default+fast ensemble with each
# TTA mode, calibration, and the default as int8. Speed figures have their own benchmarks
# (benchmarks/photo_latency.py, benchmarks/classifier_throughput.py), best run on an idle machine.
# About half an hour on the 2-core EPYC. Raw output goes to OUT (default reports/raw/bundled).
# Usage: bash scripts/measure_bundled.sh FER2013_FILE [OUT]
set -euo pipefail
data=$(realpath "${1:?usage: bash scripts/measure_bundled.sh FER2013_FILE [OUT]}")
out=$(realpath -m "${2:-$(dirname "$0")/../reports/raw/bundled}")
mkdir -p "$out"
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

step() { echo "$(date +%H:%M:%S) $*" >&2; }

for backend in torch onnx; do
  step "default on $backend"
  ferlab evaluate default --data "$data" --backend "$backend" > "$out/evaluate_default_$backend.json"
done
# The card holds the default's TTA accuracies on PyTorch; these are its ONNX twin's.
for tta in flip shift; do
  step "default on onnx, $tta TTA"
  ferlab evaluate default --data "$data" --backend onnx --tta "$tta" > "$out/evaluate_default_onnx_$tta.json"
done
for backend in torch onnx; do
  for tta in none flip shift; do
    step "default+fast on $backend, $tta TTA"
    ferlab evaluate default+fast --data "$data" --backend "$backend" --tta "$tta" \
      > "$out/evaluate_default+fast_${backend}_$tta.json"
  done
done
step "calibration"
python benchmarks/calibration.py --data "$data" --models default default+fast > "$out/calibration.txt"
step "default as int8"
# The int8 file itself is not kept: `ferlab export` writes it again in a minute.
ferlab export --onnx "$scratch/default-int8.onnx" --int8 --data "$data" > "$out/export_default_int8.txt"
cp "$scratch/default-int8.json" "$out/default-int8.card.json"
step "done: $out"
