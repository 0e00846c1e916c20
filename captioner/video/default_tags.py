"""Per-clip tags from what the frames show, the default that needs no video training.

A clip's tags are its frames' merged photo tags (captioner.tagging: concepts, ImageNet basic
words, objects), pooled by one rule: a word's clip score is the mean of its scores over the
clip's frames, a frame without the word scoring 0, so the score is the chance that a frame of
the clip shows the thing, and a word seen once by chance in ten frames keeps a tenth of its
score (the mean of a word's best 1, 3 or 5 frames was tried beside it and chosen against:
benchmarks/video_tags.py). The frames' captions can only raise a word a tagger already sees:
a score ``s`` becomes ``s + (1 - s) * s * share``, ``share`` being the fraction of the clip's
frame captions that name the word, so a caption word no tagger sees is never a tag. Words
that say nothing of what is shown (sizes, colours, postures, clothing, place-holders:
captioner.data.filler) are left out. The clip's caption comes from the image captioner (see
the tagger).
"""

from __future__ import annotations

import numpy as np

from captioner.data.filler import is_filler
from captioner.data.words import caption_concepts

TOP_FRAMES = None  # the frames each word's score averages, its best first: None for all


def clip_tags(frame_tags: list[list[dict]], captions: list[str], top_k: int | None = None,
              top_frames: int | None = TOP_FRAMES) -> list[dict]:
    """The clip's tags, best first, from its frames' tags (``{"tag", "score", "source"[,
    "count"]}`` per frame) and its frames' captions (any number, none included).
    ``top_frames``: how many of a word's best frames its score averages (None: all)."""
    scores: dict[str, list[float]] = {}
    best: dict[str, dict] = {}
    for tags in frame_tags:
        for tag in tags:
            word = tag["tag"]
            if is_filler(word):
                continue
            scores.setdefault(word, []).append(float(tag["score"]))
            if word not in best or tag["score"] > best[word]["score"]:
                best[word] = tag
    named = [set(caption_concepts(caption)) for caption in captions]
    depth = max(1, len(frame_tags) if top_frames is None else min(top_frames, len(frame_tags)))
    pooled = []
    for word, found in scores.items():
        s = sum(sorted(found, reverse=True)[:depth]) / depth
        share = sum(word in words for words in named) / len(named) if named else 0.0
        tag = {"tag": word, "score": round(s + (1 - s) * s * share, 4), "source": best[word]["source"]}
        if "count" in best[word]:
            tag["count"] = best[word]["count"]
        pooled.append(tag)
    pooled.sort(key=lambda t: (-t["score"], t["tag"]))
    return pooled[:top_k] if top_k is not None else pooled


def representative_frame(features: np.ndarray) -> int:
    """Index of the frame whose (L2-normalised) feature is closest to the clip's mean."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centre = unit.mean(axis=0)
    return int(np.argmax(unit @ centre))
