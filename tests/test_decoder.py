"""The caption decoder and the searches, on a tiny synthetic caption set it must learn."""

import keras
import numpy as np
import pytest

from captioner.captioning.config import TrainConfig
from captioner.captioning.decoder import CaptionDecoder
from captioner.captioning.search import beam_search, greedy, next_words
from captioner.captioning.train import Trainer, build_decoder
from captioner.data.text import Vocabulary
from captioner.evaluation.captions import evaluate_captions

SCENES = [
    ["a red square on the left", "a red box at the left"],
    ["a blue circle in the middle", "a blue ball in the centre"],
    ["two green dogs run on grass", "two green dogs are running"],
    ["an old man reads a book", "an old man is reading"],
    ["a child jumps into the water", "a kid jumps into a pool"],
    ["people walk down a busy street", "a crowd walks down the street"],
]


def synthetic(n_per_scene: int, seed: int):
    """Features clustered by scene (plus noise) and each scene's captions."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(len(SCENES), 48))
    feats, caps = [], []
    for i in range(n_per_scene * len(SCENES)):
        scene = i % len(SCENES)
        feats.append(centres[scene] + 0.2 * rng.normal(size=48))
        caps.append(SCENES[scene])
    return np.asarray(feats, dtype="float32"), caps


CONFIG = TrainConfig(embed_dim=32, units=64, dropout=0.1, feature_dropout=0.0, learning_rate=5e-3,
                     batch_size=32, epochs=25, patience=25, monitor="bleu4", min_count=1, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train, dev = synthetic(30, seed=1), synthetic(4, seed=2)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    trainer = Trainer(tmp_path_factory.mktemp("run"), vocab, CONFIG, train, dev, progress=False)
    return trainer, trainer.run(), vocab, dev


def test_learns_synthetic_captions_to_high_bleu(trained):
    trainer, decoder, vocab, (features, refs) = trained
    caps = greedy(decoder, vocab, features)
    scores = evaluate_captions({i: c.text for i, c in enumerate(caps)}, dict(enumerate(refs)))
    assert scores["BLEU-4"] > 90, scores
    history = trainer.state["history"]
    assert history[-1]["loss"] < history[0]["loss"] / 3


def test_beam_width_one_is_greedy(trained):
    _, decoder, vocab, (features, _) = trained
    g = greedy(decoder, vocab, features)
    b = beam_search(decoder, vocab, features, width=1)
    assert [c.text for c in g] == [c.text for c in b]
    np.testing.assert_allclose([c.score for c in g], [c.score for c in b], atol=1e-5)


def test_beam_finds_at_least_as_likely_captions(trained):
    _, decoder, vocab, (features, _) = trained
    g = greedy(decoder, vocab, features)
    b = beam_search(decoder, vocab, features, width=4, length_penalty=0.0)
    total = lambda c: c.score * (len(c.text.split()) + 1)
    assert all(total(y) >= total(x) - 1e-4 for x, y in zip(g, b))


def test_next_words_follow_the_prefix(trained):
    _, decoder, vocab, (features, _) = trained
    words = next_words(decoder, vocab, features[0], "a red", k=3)  # scene 0
    assert words[0][0] in {"square", "box"}
    assert sum(p for _, p in words) <= 1.0 + 1e-6
    assert words == sorted(words, key=lambda w: -w[1])


def test_save_then_load_gives_identical_captions(trained, tmp_path):
    _, decoder, vocab, (features, _) = trained
    decoder.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, CaptionDecoder)
    assert [c.text for c in beam_search(decoder, vocab, features, 3)] == [
        c.text for c in beam_search(loaded, vocab, features, 3)
    ]


def test_resume_continues_an_interrupted_run(tmp_path):
    train, dev = synthetic(10, seed=3), synthetic(2, seed=4)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    short = TrainConfig(**{**CONFIG.__dict__, "epochs": 2})
    Trainer(tmp_path, vocab, short, train, dev, progress=False).run()
    full = TrainConfig(**{**CONFIG.__dict__, "epochs": 4})
    trainer = Trainer(tmp_path, vocab, full, train, dev, progress=False)
    trainer.run(resume=True)
    assert [row["epoch"] for row in trainer.state["history"]] == [1, 2, 3, 4]


def test_padding_is_masked():
    vocab = Vocabulary.build(["a b c"], min_count=1)
    decoder = build_decoder(vocab, 8, CONFIG)
    feats = np.ones((1, 8), "float32")
    short = np.array([[1, 4, 5]])
    padded = np.array([[1, 4, 5, 0, 0]])
    a = np.asarray(decoder((feats, short)))[0]
    b = np.asarray(decoder((feats, padded)))[0, :3]
    np.testing.assert_allclose(a, b, atol=1e-5)
