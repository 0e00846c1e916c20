#!/usr/bin/env bash
# The recipe of the bundled captioner (captioner/pretrained/flickr8k_lite0) and its taggers,
# in one go. Every step resumes or is quick: run it again after an interruption.
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
[ -f "$run/xe/card.json" ] || captioner train --data "$flickr/Flickr8k.token.txt" \
  --images "$flickr/Images" --out "$run/xe" \
  --decoder attention --epochs 8 --patience 3 --lr-decay 0.5 --min-count 5 \
  --lm-data "$flickr/Flickr8k.token.txt" --lm-data "$data/coco_captions/captions_text.json" \
  --lm-epochs 1 --save-language-model "$run/language_model.weights.h5" "${resume[@]}"

# 2. One epoch of self-critical fine-tuning on CIDEr-D (the previous bundle's best was its
#    first), the samples baseline.
resume=()
[ -f "$run/scst/checkpoints/progress.json" ] && resume=(--resume)
[ -f "$run/scst/card.json" ] || captioner finetune --model "$run/xe" \
  --data "$flickr/Flickr8k.token.txt" --images "$flickr/Images" --out "$run/scst" \
  --epochs 1 --scst-baseline samples "${resume[@]}"

# 3. The taggers: concepts from the 7x7 maps, then the calibration of the merged tags on the
#    dev-select halves of Flickr8k and coco_dev (the detector ships converted: nanodet.md).
captioner train-concepts --data "$flickr/Flickr8k.token.txt" --images "$flickr/Images" \
  --out captioner/tagging/concepts_lite0.npz --epochs 10
captioner calibrate-tags --data "$flickr/Flickr8k.token.txt" --images "$flickr/Images" \
  --data "$data/coco_dev/captions.token.txt" --images "$data/coco_dev/Images" \
  --out captioner/tagging/calibration.json

# 4. Text-only words and guidance chosen on dev-select; the dev-report scores go in the card.
python recipes/choose_everyday.py "$run/scst" "$run/language_model.weights.h5" "$run/final" \
  --data-root "$data"
rm -rf captioner/pretrained/flickr8k_lite0
cp -r "$run/final" captioner/pretrained/flickr8k_lite0

# 5. The default decoding chosen again as it now runs (guided), then the guidance at that
#    decoding, then the output-layer shortlist, each on dev-select (card only).
for choice in choose_decoding choose_guidance choose_shortlist; do
  python "recipes/$choice.py" captioner/pretrained/flickr8k_lite0 --data-root "$data" --write
done
