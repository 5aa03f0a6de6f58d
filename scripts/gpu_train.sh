#!/usr/bin/env bash
# Long accuracy runs for a lent GPU, in steps that each stay under 10 minutes.
# Run it again (same arguments) to resume: every step continues from OUT/<run>/last.pt.
#
#   bash scripts/gpu_train.sh DATA OUT [MODEL] [SEED]
#   e.g. bash scripts/gpu_train.sh shared/data/fer2013.csv.gz "$OUT" resnet18_fer 0
#
# Weights (best.safetensors), model.json, history.json and metrics.json land in OUT/<run>/.
set -euo pipefail
DATA=${1:?path to fer2013.csv(.gz)}
OUT=${2:?output folder}
MODEL=${3:-resnet18_fer}
SEED=${4:-0}
python -c "import ferlab" 2>/dev/null || pip install -q -e .
RUN="$OUT/$MODEL-strong-s$SEED"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# SGD + Nesterov, cosine schedule, strong augmentation (flip, rotate, scale, shift, erase),
# label smoothing, a moving average of the weights (kept when better); the best epoch is
# chosen on PublicTest only.
ferlab train --data "$DATA" --out "$RUN" --model "$MODEL" --epochs 120 --batch-size 128 \
  --optimizer sgd --lr 0.05 --weight-decay 5e-4 --schedule cosine --augment strong --label-smoothing 0.1 \
  --ema-decay 0.999 --seed "$SEED" --resume --max-minutes 8.5 2>&1 | tail -n 5
