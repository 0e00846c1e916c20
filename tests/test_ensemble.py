"""Ensembles (captioner.captioning.ensemble): several decoders, or several views, as one."""

import numpy as np
import pytest
from test_decoder import CONFIG, synthetic

from captioner.captioning.attention import AttentionDecoder
from captioner.captioning.captioner import Captioner
from captioner.captioning.config import TrainConfig
from captioner.captioning.decoder import CaptionDecoder
from captioner.captioning.ensemble import Ensemble
from captioner.captioning.search import beam_search, greedy
from captioner.captioning.train import Trainer
from captioner.data.text import Vocabulary
from captioner.errors import CaptionerError

SHORT = TrainConfig(**{**CONFIG.__dict__, "epochs": 6})
CARD = {"encoder": "efficientnet_lite0", "config": {}, "decoding": {"beam": 3, "length_penalty": 0.0}}


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    train, dev = synthetic(10, seed=7), synthetic(2, seed=8)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    decoders = [Trainer(tmp_path_factory.mktemp(f"seed{seed}"), vocab,
                        TrainConfig(**{**SHORT.__dict__, "seed": seed}), train, dev,
                        progress=False).run() for seed in (0, 1)]
    return decoders, vocab, dev[0]


def _logp(decoder, features, tokens):
    states = decoder.initial_state(features)
    logp = None
    for token in tokens:
        logp, states = decoder.step(np.full(len(features), token, dtype="int32"), states)
    return np.asarray(logp)


def test_one_member_decodes_exactly_like_the_decoder_itself(members):
    (first, _), vocab, features = members
    alone = Ensemble([first])
    views = features[:, None]
    np.testing.assert_allclose(_logp(alone, views, [1, 5, 7]), _logp(first, features, [1, 5, 7]), atol=1e-5)
    assert [c.text for c in greedy(alone, vocab, views)] == [c.text for c in greedy(first, vocab, features)]
    assert ([c.text for c in beam_search(alone, vocab, views, 3)]
            == [c.text for c in beam_search(first, vocab, features, 3)])


def test_members_and_views_average_their_log_probabilities(members):
    (first, second), _, features = members
    both = _logp(Ensemble([first, second]), features[:, None], [1, 5])
    mean = (_logp(first, features, [1, 5]) + _logp(second, features, [1, 5])) / 2
    expected = mean - np.log(np.exp(mean).sum(-1, keepdims=True))
    np.testing.assert_allclose(both, expected, atol=1e-5)
    # two views of each image: their word distributions averaged, one hypothesis per image
    views = np.stack([features, features[::-1]], axis=1)
    got = _logp(Ensemble([first]), views, [1, 5])
    mean = (np.exp(_logp(first, features, [1, 5])) + np.exp(_logp(first, features[::-1], [1, 5]))) / 2
    np.testing.assert_allclose(np.exp(got), mean, atol=1e-5)


def test_a_show_and_tell_member_reads_the_mean_of_the_spatial_map(members):
    (first, _), vocab, features = members
    attention = AttentionDecoder(len(vocab), 48, regions=4, embed_dim=8, units=16,
                                 attention_dim=8).build_for()
    maps = np.random.default_rng(0).normal(size=(len(features), 1, 4, 48)).astype("float32")
    mixed = Ensemble([first, attention])
    assert mixed.feature_kind == "spatial"
    state = mixed.initial_state(maps)
    own = first.initial_state(maps[:, 0].mean(axis=1))
    np.testing.assert_allclose(state[0][:, 0], np.asarray(own[0]), atol=1e-6)
    tokens = np.ones((len(features), 3), dtype="int32")
    np.testing.assert_allclose(mixed.attention_maps(maps[:, 0], tokens),  # its attention member's
                               np.asarray(attention.attention_maps(maps[:, 0], tokens)), atol=1e-6)


def test_an_ensemble_bundle_round_trips(members, tmp_path):
    (first, second), vocab, features = members
    joined = Captioner.ensemble([Captioner(first, vocab, dict(CARD)), Captioner(second, vocab, dict(CARD))])
    joined.save(tmp_path / "both")
    assert sorted(p.name for p in (tmp_path / "both" / "members").iterdir()) == ["1.keras", "1.step.json"]
    loaded = Captioner.load(tmp_path / "both")
    assert ([c.text for c in loaded.caption_features(features)]
            == [c.text for c in joined.caption_features(features)])
    assert loaded._decoder is None  # captioned from the plain weights, Keras not loaded
    assert isinstance(loaded.decoder, Ensemble) and len(loaded.decoder.members) == 2
    other = Vocabulary.build(["a different caption altogether"], min_count=1)
    with pytest.raises(CaptionerError, match="one vocabulary"):
        Captioner.ensemble([joined, Captioner(first, other, dict(CARD))])


def test_views_of_one_scene_give_one_caption(members):
    (first, _), vocab, features = members
    captioner = Captioner(first, vocab, dict(CARD))
    same = captioner.caption_views(np.repeat(features[:1], 3, axis=0))
    assert same.text == captioner.caption_features(features[:1])[0].text


def test_next_words_of_an_ensemble_follow_its_averaged_distribution():
    vocab = Vocabulary.build(["a red dog runs", "a blue cat sits"], min_count=1)
    first, second = (CaptionDecoder(len(vocab), 48, embed_dim=8, units=16).build_for() for _ in range(2))
    feature = np.random.default_rng(0).normal(size=48).astype("float32")
    joined = Captioner.ensemble([Captioner(first, vocab, dict(CARD)), Captioner(second, vocab, dict(CARD))])
    words = joined.next_words(feature, "a red", k=3)
    expected = np.exp(_logp(Ensemble([first, second]), feature[None, None],
                            [Vocabulary.START_ID, *vocab.encode("a red", add_start_end=False)])[0])
    expected[[Vocabulary.PAD_ID, Vocabulary.START_ID, Vocabulary.UNK_ID]] = 0  # never suggested
    best = np.argsort(-expected)[:3]
    assert [w for w, _ in words] == [vocab.id_to_word[i] for i in best]
    assert [p for _, p in words] == pytest.approx(expected[best], abs=1e-5)
    assert sum(p for _, p in words) <= 1 + 1e-6
