"""A bundle's plain weights (captioner.captioning.plain_weights): the numpy step read from the
saved .keras file with h5py alone steps exactly as the Keras decoder does."""

import json

import numpy as np
import pytest

from captioner.captioning.bundle import Bundle, save_bundle
from captioner.captioning.captioner import PRETRAINED, Captioner
from captioner.captioning.config import TrainConfig
from captioner.captioning.plain_weights import index_path, read_step
from captioner.captioning.train import build_decoder
from captioner.data.text import Vocabulary
from captioner.errors import BundleError

VOCAB = Vocabulary.build([f"w{i} w{i + 1} w{i + 2}" for i in range(40)], min_count=1)
CARD = {"encoder": "efficientnet_lite0", "decoding": {"beam": 3, "length_penalty": 1.0}}


def _saved(kind: str, folder, seed: int = 0):
    config = TrainConfig(decoder=kind, embed_dim=16, units=24, attention_dim=12, seed=seed,
                         num_layers=2 if kind == "show_tell" else 1)
    shape = (6, 20) if kind == "attention" else (20,)
    decoder = build_decoder(VOCAB, shape, config)
    rng = np.random.default_rng(seed)
    decoder.set_weights([rng.normal(scale=0.6, size=w.shape) for w in decoder.get_weights()])
    save_bundle(folder, Bundle(decoder, dict(CARD), vocab=VOCAB))
    return decoder, shape


@pytest.mark.parametrize("kind", ["show_tell", "attention"])
def test_the_step_read_from_a_saved_bundle_steps_as_the_keras_decoder(kind, tmp_path):
    decoder, shape = _saved(kind, tmp_path / "bundle")
    assert index_path(tmp_path / "bundle" / "model.keras").is_file()  # written by the save itself
    step = read_step(tmp_path / "bundle" / "model.keras")
    features = np.random.default_rng(1).random((4, *shape), dtype="float32")
    slow_states, fast_states = decoder.initial_state(features), step.initial_state(features)
    tokens = np.full(4, Vocabulary.START_ID)
    for _ in range(5):
        slow, slow_states = decoder.step(tokens.astype("int32"), slow_states)
        quick, fast_states = step.step(tokens, fast_states)
        np.testing.assert_allclose(quick, np.asarray(slow), atol=1e-5)
        assert np.asarray(slow).std() > 0.5  # far from uniform: a wrong array would show
        tokens = np.asarray(slow).argmax(-1)


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
