#!/usr/bin/env bash
# The recipe of the bundled captioner (captioner/pretrained/flickr8k_lite0), in one go.
# Every step resumes: run it again after an interruption and it goes on where it stopped.
# On a GPU machine the same script runs unchanged (TensorFlow picks the GPU).
#   bash recipes/bundled.sh [DATA_ROOT] [RUN_FOLDER]
set -euo pipefail
data=${1:-../shared/data}
run=${2:-runs/bundled}
flickr=$data/flickr8k_mini
mkdir -p "$run"

# 1. Language from text, then paired training: the vocabulary holds every word seen at least
#    5 times in the Flickr8k training captions and the COCO caption text (never dev captions);
#    one epoch of language-model pre-training on all that text comes before the photos.
resume=()
[ -f "$run/xe/checkpoints/progress.json" ] && resume=(--resume)
captioner train --data "$flickr/Flickr8k.token.txt" --images "$flickr/Images" --out "$run/xe" \
  --decoder attention --epochs 10 --patience 3 --lr-decay 0.5 --min-count 5 \
  --lm-data "$flickr/Flickr8k.token.txt" --lm-data "$data/coco_captions/captions_text.json" \
  --lm-epochs 1 "${resume[@]}"
