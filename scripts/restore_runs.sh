#!/usr/bin/env bash
# Restores into runs/ the trained models that were once ferlab's bundled default, from git
# history (each commit below put that run's weights and card in ferlab/pretrained/), so that
# the commands in reports/experiments.md that name them as teachers (runs/fast3-long,
# runs/fast-long) or as ensemble members can be rerun without training them again first.
# Usage: bash scripts/restore_runs.sh   (needs a full clone, not a shallow one)
set -euo pipefail
cd "$(dirname "$0")/.."
while read -r run commit; do
  mkdir -p "runs/$run"
  git show "$commit:ferlab/pretrained/default.safetensors" > "runs/$run/best.safetensors"
  git show "$commit:ferlab/pretrained/default.json" > "runs/$run/model.json"
  echo "runs/$run <- commit $commit"
done <<'RUNS'
fast-long e17ab7c
fast3-long 2988b5d
fast3-kd120 c5c7b8d
fast3w-kd100 2d29379
fast3w-kd100-s1 68cdd3d
fast3w-kd100-s3 7dcc852
fast3w-kdD-s1 dc2231b
RUNS
