"""The soft-attention decoder (captioner.captioning.attention) on maps where only attention
can tell where the thing is: a caption names what and where, and the mean of the map has
lost the where."""

import keras
import numpy as np
import pytest

from captioner.captioning.attention import AttentionDecoder
from captioner.captioning.config import TrainConfig
from captioner.captioning.search import beam_search, greedy
from captioner.captioning.train import Trainer
from captioner.data.text import Vocabulary
from captioner.evaluation.captions import evaluate_captions

THINGS = ("dog", "ball", "boat")
PLACES = ("left", "right", "top", "bottom")  # one region each of a 2x2 map
DIM = 12


def maps(n: int, seed: int):
    """(n, 4, DIM) maps: every region carries its own position code, one carries a thing."""
    rng = np.random.default_rng(seed)
    fixed = np.random.default_rng(7)
    places, things = fixed.normal(size=(4, DIM)), 2.0 * fixed.normal(size=(3, DIM))
    features, captions = [], []
    for _ in range(n):
        where, what = rng.integers(4), rng.integers(3)
        image = places + 0.1 * rng.normal(size=(4, DIM))
        image[where] += things[what]
        features.append(image)
        captions.append([f"a {THINGS[what]} on the {PLACES[where]}"])
    return np.asarray(features, dtype="float32"), captions


CONFIG = TrainConfig(decoder="attention", embed_dim=16, units=48, attention_dim=16, dropout=0.0,
                     feature_dropout=0.0, learning_rate=1e-2, batch_size=32, epochs=25,
                     patience=25, monitor="bleu4", min_count=1, seed=0, attention_penalty=0.1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train, dev = maps(480, seed=1), maps(48, seed=2)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    trainer = Trainer(tmp_path_factory.mktemp("attention"), vocab, CONFIG, train, dev, progress=False)
    return trainer.run(), vocab, dev


def _bleu4(decoder, vocab, features, refs):
    caps = greedy(decoder, vocab, features)
    return evaluate_captions({i: c.text for i, c in enumerate(caps)}, dict(enumerate(refs)))["BLEU-4"]


def test_attention_learns_where_the_thing_is(trained):
    decoder, vocab, (features, refs) = trained
    assert isinstance(decoder, AttentionDecoder)
    assert _bleu4(decoder, vocab, features, refs) > 90


def test_show_and_tell_cannot_see_where_on_the_same_maps(tmp_path):
    """The control: the pooled mean keeps what but not where, so the same data stays far lower."""
    (train_x, train_y), (dev_x, dev_y) = maps(480, seed=1), maps(48, seed=2)
    vocab = Vocabulary.build([c for caps in train_y for c in caps], min_count=1)
    config = TrainConfig(**{**CONFIG.__dict__, "decoder": "show_tell"})
    pooled = Trainer(tmp_path, vocab, config, (train_x.mean(1), train_y), (dev_x.mean(1), dev_y),
                     progress=False).run()
    assert _bleu4(pooled, vocab, dev_x.mean(1), dev_y) < 80


def test_attention_weights_are_a_distribution_that_depends_on_where_the_thing_is(trained):
    decoder, vocab, (features, refs) = trained
    tokens = np.array([vocab.encode(caps[0]) for caps in refs], dtype="int32")[:, :-1]
    alphas = np.asarray(decoder.attention_maps(features, tokens))  # (B, T, 4)
    np.testing.assert_allclose(alphas.sum(-1), 1.0, atol=1e-5)
    where = np.asarray([PLACES.index(caps[0].split()[-1]) for caps in refs])
    # Before writing the place word, where the decoder looks is told by where the thing is
    # (which region it picks for each place is its own business: it may read the place from
    # the thing's region or from the others).
    looked = alphas[:, -1].argmax(-1)
    agree = sum(np.bincount(looked[where == p], minlength=4).max() for p in range(4))
    assert agree / len(where) > 0.8 and len(set(looked.tolist())) > 1


def test_regulariser_is_part_of_the_training_loss(trained):
    decoder, vocab, (features, refs) = trained
    tokens = np.array([vocab.encode(caps[0]) for caps in refs], dtype="int32")
    decoder((features, tokens), training=True)
    assert len(decoder.losses) == 1 and float(decoder.losses[0]) >= 0


def test_saves_and_loads_in_safe_mode_with_identical_captions(trained, tmp_path):
    decoder, vocab, (features, _) = trained
    decoder.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras", safe_mode=True, compile=False)
    assert isinstance(loaded, AttentionDecoder)
    assert [c.text for c in beam_search(decoder, vocab, features, 3)] == [
        c.text for c in beam_search(loaded, vocab, features, 3)]
