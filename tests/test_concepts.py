"""The concept tagger: its words, labels, noisy-OR, a tagger that learns, and the shipped one."""

import numpy as np
import pytest

from captioner.tagging.concept_training import concept_labels, concept_vocabulary, train_concept_tagger
from captioner.tagging.concepts import ConceptTagger, noisy_or


def test_noisy_or_matches_the_product_formula():
    logits = np.random.default_rng(0).normal(size=(2, 49, 3)) - 4
    cells = 1 / (1 + np.exp(-logits))
    assert np.allclose(noisy_or(logits), 1 - np.prod(1 - cells, axis=1))


def test_words_are_content_words_counted_once_per_photo():
    captions = [["A man is running on the beach", "a man runs"], ["Two men running"], ["A dog"]]
    assert concept_vocabulary(captions, min_images=2) == ["man", "running"]
    labels = concept_labels(captions, ["man", "running", "dog"])
    assert labels.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_a_tagger_learns_where_a_word_is_shown(tmp_path):
    # Photos of 16 cells: "ball" is one bright cell of channel 0 anywhere, "grass" is channel 1 everywhere.
    rng = np.random.default_rng(0)
    maps = rng.normal(0, 0.3, size=(400, 16, 4)).astype("float32")
    ball, grass = rng.random(400) < 0.5, rng.random(400) < 0.5
    maps[ball, rng.integers(0, 16, ball.sum()), 0] += 3.0
    maps[grass, :, 1] += 1.0
    captions = [[" ".join(["a ball"] * int(b) + ["some grass"] * int(g)) or "a photo"]
                for b, g in zip(ball, grass)]
    tagger = train_concept_tagger(maps, captions, "toy", words=["ball", "grass"], epochs=40,
                                  learning_rate=0.05, progress=False)
    tagger.save(tmp_path / "t.npz")
    loaded = ConceptTagger.load(tmp_path / "t.npz")
    p = loaded.probabilities(maps)
    assert ((p[:, 0] > 0.5) == ball).mean() > 0.95
    assert ((p[:, 1] > 0.5) == grass).mean() > 0.95
