"""Per-clip tags from per-frame results, the default that needs no video training.

A clip's tags are words of two kinds, each with a score in [0, 1]: the basic-level words of
the ImageNet classes its frames show (captioner.encoders.basic_words; score: the clip's mean
class probabilities, summed per word), and the nouns of its frames' captions
(captioner.data.words; score: the share of the clip's frames whose caption names the thing).
A word of both kinds keeps the higher score. The clip's caption comes from the image
captioner (see the tagger): from all its frames, or from its most representative one.
"""

from __future__ import annotations

import numpy as np

from captioner.data.words import caption_nouns
from captioner.encoders.basic_words import basic_tags


def combine_clip_tags(probabilities: np.ndarray, captions: list[str], top_k: int) -> list[dict]:
    """The clip's top-k tags from its frames' class probabilities (N, 1000) and captions."""
    scores = {t["tag"]: t["score"] for t in basic_tags(probabilities.mean(axis=0)[None], top_k)[0]}
    counts: dict[str, int] = {}
    for caption in captions:
        for noun in caption_nouns(caption):
            counts[noun] = counts.get(noun, 0) + 1
    for noun, count in counts.items():
        scores[noun] = max(scores.get(noun, 0.0), count / len(captions))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    return [{"tag": tag, "score": round(score, 4)} for tag, score in ranked]


def representative_frame(features: np.ndarray) -> int:
    """Index of the frame whose (L2-normalised) feature is closest to the clip's mean."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centre = unit.mean(axis=0)
    return int(np.argmax(unit @ centre))
