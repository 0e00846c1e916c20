"""Training the concept tagger: its words, its labels and its detectors (Keras)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from captioner.data.words import caption_concepts
from captioner.tagging.concepts import ConceptTagger

CONCEPT_WORDS = 300  # the most frequent content words of the training captions
MIN_IMAGES = 20  # a word on fewer training photos cannot be learnt
START_BIAS = -6.0  # per cell: 49 cells start the noisy-OR near 0.1, not near 1


def concept_vocabulary(captions: list[list[str]], size: int = CONCEPT_WORDS,
                       min_images: int = MIN_IMAGES) -> list[str]:
    """The ``size`` content words on the most photos (each photo counts once per word)."""
    counts = Counter(w for caps in captions for w in {c for cap in caps for c in caption_concepts(cap)})
    ranked = sorted((w for w, n in counts.items() if n >= min_images), key=lambda w: (-counts[w], w))
    return ranked[:size]


def concept_labels(captions: list[list[str]], words: list[str]) -> np.ndarray:
    """(N, words) 0/1: a photo shows a word when any of its captions names it."""
    column = {w: j for j, w in enumerate(words)}
    labels = np.zeros((len(captions), len(words)), dtype=np.float32)
    for i, caps in enumerate(captions):
        for cap in caps:
            for word in caption_concepts(cap):
                if word in column:
                    labels[i, column[word]] = 1.0
    return labels


def train_concept_tagger(maps: np.ndarray, captions: list[list[str]], encoder: str,
                         words: list[str] | None = None, epochs: int = 10, batch_size: int = 64,
                         learning_rate: float = 1e-3, seed: int = 0,
                         progress: bool = True) -> ConceptTagger:
    """Fit one noisy-OR detector per word on (N, cells, channels) maps and their captions."""
    import keras
    from keras import ops

    words = words or concept_vocabulary(captions)
    labels = concept_labels(captions, words)
    keras.utils.set_random_seed(seed)
    cells = keras.Input(shape=maps.shape[1:])
    detector = keras.layers.Dense(len(words), kernel_regularizer=keras.regularizers.L2(1e-5),
                                  bias_initializer=keras.initializers.Constant(START_BIAS))
    # Minus the log of "no cell shows the word": the sum over cells of softplus(logit).
    model = keras.Model(cells, ops.sum(ops.softplus(detector(cells)), axis=1))

    def loss(truth, evidence):
        shown = ops.log(ops.maximum(-ops.expm1(-evidence), 1e-7))
        return ops.mean(-truth * shown + (1.0 - truth) * evidence, axis=-1)

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    model.fit(np.asarray(maps, dtype=np.float32), labels, batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=2 if progress else 0)
    kernel, bias = detector.get_weights()
    return ConceptTagger(words, np.asarray(kernel), np.asarray(bias), encoder)


def per_word_ap(tagger: ConceptTagger, maps: np.ndarray, captions: list[list[str]]) -> dict:
    """Average precision of each word over these photos (words no photo shows are left out),
    and their mean, on a 0-100 scale."""
    from captioner.evaluation.tags import average_precision

    scores, labels = tagger.probabilities(maps), concept_labels(captions, tagger.words)
    ap = {w: 100.0 * average_precision(scores[:, j], labels[:, j])
          for j, w in enumerate(tagger.words) if labels[:, j].any()}
    return {"mean": float(np.mean(list(ap.values()))), "words": len(ap),
            "per_word": {w: round(v, 1) for w, v in sorted(ap.items(), key=lambda kv: -kv[1])}}
