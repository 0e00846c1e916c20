"""Per-clip tags and captions from per-frame results, the default that needs no video training.

For each clip the frames' ImageNet probabilities are averaged (score: mean probability) and
the salient words of the frames' captions are counted (score: share of the clip's frames
whose caption has the word). The clip's caption is the caption of its most representative
frame: the one whose feature is closest to the clip's mean feature.
"""

from __future__ import annotations

import numpy as np

from captioner.data.text import tokenize
from captioner.topk import top_k_indices

# Words that say nothing about what is in a picture (function words, colours of clothes
# the captioner loves, generic verbs). A fixed list: NLTK's stopwords need a download.
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "from", "with", "by", "for", "into", "onto", "over", "under", "near", "next", "up", "down", "out", "off", "is", "are", "was", "were", "be", "being", "been", "it", "its", "this", "that", "these", "those", "there", "here", "his", "her", "their", "its", "one", "two", "three", "some", "his", "while", "as", "very", "just", "front", "top", "side", "other", "another", "each", "while", "has", "have", "does", "do", "doing", "while", "who", "what", "which", "white", "black", "red", "blue", "green", "yellow", "orange", "pink", "purple", "brown", "grey", "gray", "shirt", "wearing"]
)


def salient_words(caption: str) -> list[str]:
    """The content words of a caption, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in tokenize(caption):
        if word not in STOPWORDS and len(word) > 2:
            seen.setdefault(word, None)
    return list(seen)


def combine_clip_tags(probabilities: np.ndarray, class_names: tuple[str, ...], captions: list[str],
                      top_k: int) -> list[dict]:
    """The clip's top-k tags from its frames' class probabilities (N, C) and captions."""
    scores: dict[str, float] = {}
    mean = probabilities.mean(axis=0)
    for i in top_k_indices(mean, top_k):
        scores[class_names[i]] = float(mean[i])
    counts: dict[str, int] = {}
    for caption in captions:
        for word in salient_words(caption):
            counts[word] = counts.get(word, 0) + 1
    for word, count in counts.items():
        scores[word] = max(scores.get(word, 0.0), count / len(captions))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    return [{"tag": tag, "score": round(score, 4)} for tag, score in ranked]


def representative_frame(features: np.ndarray) -> int:
    """Index of the frame whose (L2-normalised) feature is closest to the clip's mean."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centre = unit.mean(axis=0)
    return int(np.argmax(unit @ centre))
