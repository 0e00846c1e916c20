"""Words only the caption text holds ("giraffe", "pizza"): keeping them alive after paired training.

Paired training on Flickr8k never shows such a word as a target, so every step pushes its
output row down and it fades from the decoder however well the language-model pre-training
knew it. After training, each text-only word's output row (its column of the ``logits``
kernel and its bias) is set one of two ways:
- ``keep``: the row language-model pre-training left, its bias moved by the mean change of the
  paired words' biases, so the word keeps its place among them;
- ``borrow`` (Hendricks et al. 2016, Deep Compositional Captioning): the row of the paired word
  nearest to it in the pre-trained input embedding ("zebra" borrows from "horse"), its bias
  lowered by how much rarer the text made it than that word.
With neither, the rows stay as paired training left them (``paired``).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from captioner.data.text import Vocabulary

METHODS = ("paired", "keep", "borrow")


def language_model_of(decoder: keras.Model, weights: Path) -> keras.Model:
    """A decoder like ``decoder`` holding the weights language-model pre-training left."""
    twin = type(decoder).from_config(decoder.get_config())
    twin.build_for()
    twin.load_weights(weights)
    return twin


def revive(decoder: keras.Model, language_model: keras.Model, text_only: list[int],
           method: str) -> dict[int, int]:
    """Set the output rows of the ``text_only`` ids in place; returns, for ``borrow``, which
    paired id each text-only id took its row from."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "paired" or not text_only:
        return {}
    kernel, bias = (np.array(w) for w in decoder.logits.get_weights())
    lm_kernel, lm_bias = (np.array(w) for w in language_model.logits.get_weights())
    ids = np.array(text_only)
    paired = np.setdiff1d(np.arange(Vocabulary.UNK_ID + 1, len(bias)), ids)
    sources: dict[int, int] = {}
    if method == "keep":
        kernel[:, ids] = lm_kernel[:, ids]
        bias[ids] = lm_bias[ids] + np.mean(bias[paired] - lm_bias[paired])
    else:
        table = np.array(language_model.embedding.get_weights()[0])
        unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-8)
        nearest = paired[np.argmax(unit[ids] @ unit[paired].T, axis=1)]
        kernel[:, ids] = kernel[:, nearest]
        bias[ids] = bias[nearest] + (lm_bias[ids] - lm_bias[nearest])
        sources = dict(zip(ids.tolist(), nearest.tolist()))
    decoder.logits.set_weights([kernel, bias])
    return sources
