#!/usr/bin/env bash
# The accuracy runs for a lent GPU machine, as one command that ends within its 10-minute limit.
#
#   bash scripts/gpu_train.sh DATA OUT [MINUTES] [MODEL:SEED ...]
#
# DATA is the packed copy of FER2013 (`ferlab data pack fer2013.csv.gz --out
# .gpu/fer2013.packed.npz`, 54 MB): the 94 MB CSV.gz is over the 64 MiB that may travel
# with the repository, and the device machine cannot download. From the device tool:
#   run(command="bash scripts/gpu_train.sh .gpu/fer2013.packed.npz $OUT 6.5", carry=[".gpu"])
#
# The runs (default: ResNet-18 and three seeds of the half-width ResNet) share the GPU at
# once. A one-epoch probe of each measures its epoch time under that sharing, and each run's
# epoch count is set so that its whole schedule (cosine to zero) fits in MINUTES; the best
# epoch is chosen on PublicTest only. Every epoch is checkpointed: the same command again on
# a still-warm machine resumes the runs it finds. Nothing is installed: the machine's own PyTorch runs
# ferlab from this checkout. Back in OUT: results.tar.gz (every run's command, config,
# history, metrics with PrivateTest and TTA, model card and log) and the weights of each run
# small enough to come back (16 MiB a file). To use a run here afterwards:
#   tar -xzf results.tar.gz -C runs && cp NAME.safetensors runs/gpu/NAME/best.safetensors
#   ferlab evaluate runs/gpu/NAME --data fer2013.csv --tta shift
set -euo pipefail
DATA=${1:?path to a packed FER2013 file (ferlab data pack)}
OUT=${2:?output folder}
MINUTES=${3:-6.5}
shift $(($# < 3 ? $# : 3))
RUNS=("$@")
((${#RUNS[@]})) || RUNS=(resnet18_fer:0 resnet_fer_small:0 resnet_fer_small:1 resnet_fer_small:2)
PY=${PYTHON:-python3}
WORK=${WORK:-runs/gpu}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# The runs share the machine's 16 cores: one full set of threads each would oversubscribe them.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
# SGD + Nesterov, cosine schedule, strong augmentation (flip, rotate, scale, shift, erase),
# label smoothing and a moving average of the weights (kept when better on PublicTest).
RECIPE=(--batch-size 128 --optimizer sgd --lr 0.05 --weight-decay 5e-4 --schedule cosine --augment strong
        --label-smoothing 0.1 --ema-decay 0.999 ${EXTRA_ARGS:-})
mkdir -p "$WORK" "$OUT"
# Whatever happens (a failed probe too), the logs and results come back.
collect() {
  tar -czf "$OUT/results.tar.gz" --exclude='*.pt' --exclude='*.safetensors' -C "$(dirname "$WORK")" "$(basename "$WORK")"
  ls -la "$OUT"
}
trap collect EXIT
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU seen"

train() {  # name model seed epochs [more flags]
  local name=$1 model=$2 seed=$3 epochs=$4
  shift 4
  $PY -m ferlab.cli train --data "$DATA" --out "$WORK/$name" --model "$model" --seed "$seed" \
    --epochs "$epochs" "${RECIPE[@]}" "$@" > "$WORK/$name.log" 2>&1
}

# A run already started (the same command again on a still-warm machine) keeps its epoch
# count and resumes from its checkpoint; the others are probed.
for run in "${RUNS[@]}"; do
  name=${run/:/-s}
  [[ -f "$WORK/$name/config.json" ]] || train "probe-$name" "${run%%:*}" "${run##*:}" 1 &
done
wait
for run in "${RUNS[@]}"; do
  name=${run/:/-s}
  # Epoch time under sharing, plus a third for the per-epoch PublicTest evaluation.
  epochs=$($PY -c "import json, os
started = '$WORK/$name/config.json'
if os.path.exists(started):
    print(json.load(open(started))['epochs'])
else:
    seconds = json.load(open('$WORK/probe-$name/history.json'))[0]['seconds']
    print(max(5, int($MINUTES * 60 / (seconds * 1.33 + 1))))") \
    || { echo "$name: its probe failed (see $WORK/probe-$name.log); skipped"; continue; }
  echo "$name: $epochs epochs"
  train "$name" "${run%%:*}" "${run##*:}" "$epochs" --resume --max-minutes "$MINUTES" &
done
wait

for run in "${RUNS[@]}"; do
  name=${run/:/-s}
  if [[ ! -f "$WORK/$name/metrics.json" && -f "$WORK/$name/best.safetensors" ]]; then
    echo "$name: its schedule did not fit in $MINUTES minutes; partial-metrics.json scores its best epoch so far"
    $PY -m ferlab.cli evaluate "$WORK/$name" --data "$DATA" > "$WORK/$name/partial-metrics.json" || true
  fi
  grep -a "best epoch\|stopped" "$WORK/$name.log" 2>/dev/null | tail -n 2 || true
  if [[ -f "$WORK/$name/best.safetensors" && $(stat -c %s "$WORK/$name/best.safetensors") -lt 16000000 ]]; then
    cp "$WORK/$name/best.safetensors" "$OUT/$name.safetensors"
  fi
done
