"""A bundle's plain weights (captioner.captioning.plain_weights): a loaded bundle captions from
them without Keras, old bundles still load, damage is one clear error."""

import json

import numpy as np
import pytest
from test_numpy_step import VOCAB, _decoder

from captioner.captioning.bundle import Bundle, save_bundle
from captioner.captioning.captioner import PRETRAINED, Captioner
from captioner.captioning.plain_weights import index_path, read_step
from captioner.data.text import Vocabulary
from captioner.errors import BundleError

CARD = {"encoder": "efficientnet_lite0", "decoding": {"beam": 3, "length_penalty": 1.0}}


def _saved(kind: str, folder, seed: int = 0):
    """A small decoder of large random weights, saved as a bundle (the step against Keras, from
    such a bundle: tests/test_numpy_step.py)."""
    decoder, shape = _decoder(kind, seed)
    save_bundle(folder, Bundle(decoder, dict(CARD), vocab=VOCAB))
    return decoder, shape


def test_a_loaded_bundle_captions_without_its_keras_decoder(tmp_path):
    decoder, shape = _saved("attention", tmp_path / "bundle", seed=2)
    features = np.random.default_rng(3).random((3, *shape), dtype="float32")
    loaded = Captioner.load(tmp_path / "bundle")
    quick = loaded.caption_features(features)
    assert loaded._decoder is None  # the plain weights sufficed
    keras_made = Captioner(decoder, VOCAB, dict(CARD)).caption_features(features)
    assert [c.text for c in quick] == [c.text for c in keras_made]


def test_a_bundle_without_an_index_is_read_by_keras(tmp_path):
    """Bundles saved before the index existed still load (through Keras)."""
    decoder, shape = _saved("show_tell", tmp_path / "bundle", seed=4)
    index_path(tmp_path / "bundle" / "model.keras").unlink()
    loaded = Captioner.load(tmp_path / "bundle")
    assert loaded._decoder is not None
    features = np.random.default_rng(5).random((2, *shape), dtype="float32")
    assert ([c.text for c in loaded.caption_features(features)]
            == [c.text for c in Captioner(decoder, VOCAB, dict(CARD)).caption_features(features)])


def test_a_damaged_index_is_one_clear_error(tmp_path):
    _saved("attention", tmp_path / "bundle", seed=6)
    index = index_path(tmp_path / "bundle" / "model.keras")
    info = json.loads(index.read_text())
    info["arrays"]["embeddings"] = "no/such/dataset"
    index.write_text(json.dumps(info))
    with pytest.raises(BundleError, match="model.keras: cannot read its weights"):
        read_step(tmp_path / "bundle" / "model.keras")


def test_the_shipped_bundle_carries_its_index():
    """Its model.step.json names, for every array of the step, a dataset of model.keras."""
    step = read_step(PRETRAINED / "model.keras")
    assert step is not None and step.vocab_size == len(Vocabulary.load(PRETRAINED / "vocab.json"))
