"""The numpy decoder step (captioner.captioning.numpy_step) against the Keras decoders."""

import numpy as np
import pytest

from captioner.captioning.bundle import Bundle, save_bundle
from captioner.captioning.config import TrainConfig
from captioner.captioning.ensemble import Ensemble
from captioner.captioning.numpy_step import numpy_decoder
from captioner.captioning.plain_weights import index_path, read_step
from captioner.captioning.search import beam_search, greedy
from captioner.captioning.train import build_decoder
from captioner.data.text import Vocabulary

VOCAB = Vocabulary.build([f"w{i} w{i + 1} w{i + 2}" for i in range(60)], min_count=1)


def _decoder(kind: str, seed: int):
    """A small decoder with large random weights, so that its word distributions are far from
    uniform and a wrong gate or a wrong order would show."""
    config = TrainConfig(decoder=kind, embed_dim=16, units=24, attention_dim=12, seed=seed,
                         num_layers=2 if kind == "show_tell" else 1)
    shape = (6, 20) if kind == "attention" else (20,)
    decoder = build_decoder(VOCAB, shape, config)
    rng = np.random.default_rng(seed)
    decoder.set_weights([rng.normal(scale=0.6, size=w.shape) for w in decoder.get_weights()])
    return decoder, shape


@pytest.mark.parametrize("source", ["snapshot", "saved"])
@pytest.mark.parametrize("kind", ["show_tell", "attention"])
def test_the_numpy_step_gives_the_keras_log_probabilities(kind, source, tmp_path):
    """From the Keras decoder's weights in memory, or read back from a saved bundle's plain
    weights without Keras (captioner.captioning.plain_weights)."""
    decoder, shape = _decoder(kind, seed=1)
    if source == "snapshot":
        fast = numpy_decoder(decoder)
    else:
        save_bundle(tmp_path / "bundle", Bundle(decoder, {"encoder": "efficientnet_lite0"}, vocab=VOCAB))
        assert index_path(tmp_path / "bundle" / "model.keras").is_file()  # written by the save
        fast = read_step(tmp_path / "bundle" / "model.keras")
    features = np.random.default_rng(2).random((5, *shape), dtype="float32")
    slow_states, fast_states = decoder.initial_state(features), fast.initial_state(features)
    tokens = np.full(5, Vocabulary.START_ID)
    for _ in range(6):
        slow, slow_states = decoder.step(tokens.astype("int32"), slow_states)
        quick, fast_states = fast.step(tokens, fast_states)
        np.testing.assert_allclose(quick, np.asarray(slow), atol=1e-5)
        assert np.asarray(slow).std() > 0.5  # far from uniform: the comparison means something
        tokens = np.asarray(slow).argmax(-1)


def test_the_numpy_attention_maps_are_the_keras_ones():
    decoder, shape = _decoder("attention", seed=15)
    features = np.random.default_rng(16).random((3, *shape), dtype="float32")
    tokens = np.random.default_rng(17).integers(4, len(VOCAB), (3, 5)).astype("int32")
    keras_maps = np.asarray(decoder.attention_maps(features, tokens))
    np.testing.assert_allclose(numpy_decoder(decoder).attention_maps(features, tokens), keras_maps, atol=1e-5)
    assert keras_maps.std(axis=-1).mean() > 0.01  # not uniform: a wrong step would show


def test_searches_over_the_numpy_step_write_the_keras_captions():
    members = [_decoder("show_tell", seed=3)[0], _decoder("attention", seed=4)[0]]
    features = np.random.default_rng(5).random((4, 1, 6, 20), dtype="float32")
    slow, fast = Ensemble(members), numpy_decoder(Ensemble(members))
    for search in (greedy, lambda d, v, f: beam_search(d, v, f, width=3)):
        quick, keras_made = search(fast, VOCAB, features), search(slow, VOCAB, features)
        assert [c.text for c in quick] == [c.text for c in keras_made]
        assert [c.score for c in quick] == pytest.approx([c.score for c in keras_made], abs=1e-5)


@pytest.mark.parametrize("kind", ["show_tell", "attention"])
def test_finished_images_leave_the_batch_without_changing_any_caption(kind, monkeypatch):
    from captioner.captioning import search

    decoder, shape = _decoder(kind, seed=6)
    bias = np.asarray(decoder.logits.bias).copy()
    bias[Vocabulary.END_ID] += 2.0 if kind == "show_tell" else 1.0  # captions of 1 to 12 words
    decoder.logits.bias.assign(bias)
    fast = numpy_decoder(decoder)
    features = np.random.default_rng(7).random((12, *shape), dtype="float32")
    shrunk = []  # greedy: the rows kept when it drops finished ones; beam: the rows stepped
    take, step = search._take, search._step
    monkeypatch.setattr(search, "_take", lambda states, rows: shrunk.append(len(rows)) or take(states, rows))
    for run in (lambda f: greedy(fast, VOCAB, f, max_length=12),
                lambda f: beam_search(fast, VOCAB, f, width=3, max_length=12)):
        together = run(features)
        assert shrunk, "no image finished early: the batch was never made smaller"
        monkeypatch.setattr(search, "_step", lambda d, t, *rest, **named: shrunk.append(len(t)) or step(d, t, *rest, **named))
        shrunk.clear()
        alone = [run(features[i : i + 1])[0] for i in range(len(features))]
        assert [c.text for c in together] == [c.text for c in alone]
        assert [c.score for c in together] == pytest.approx([c.score for c in alone], abs=1e-5)
        shrunk.clear()
    if kind == "attention":  # the beams of settled images leave too (show-tell's all run to the end)
        run(features)
        assert 3 * len(features) in shrunk and min(shrunk[1:]) < 3 * len(features), shrunk


def test_hypotheses_reading_their_image_once_get_the_step_of_one_copy_per_row():
    decoder, shape = _decoder("attention", seed=8)
    fast = numpy_decoder(decoder)
    features = np.random.default_rng(9).random((3, *shape), dtype="float32")
    images = np.array([2, 0, 2, 2, 1, 0])  # rows in any order, images of different counts
    tokens = np.array([Vocabulary.START_ID, 5, 6, 7, 8, 9])
    shared, rows = fast.initial_state(features, shared=True), fast.initial_state(features)
    rows = [s[images] for s in rows]
    shared[:2] = rows[:2]
    by_image, _ = fast.step(tokens, shared, images)
    per_row, _ = fast.step(tokens, rows)
    np.testing.assert_allclose(by_image, per_row, atol=1e-5)


def test_a_shortlisted_step_renormalises_over_its_words_and_rules_out_the_rest():
    from captioner.captioning.search import shortlist

    decoder, shape = _decoder("attention", seed=7)
    words = shortlist(20, [[{40, 41}], [{55}]])  # the 20 most frequent, and what constraints ask for
    assert {0, 19, 40, 41, 55} <= set(words) and 20 not in words
    full, cut = numpy_decoder(decoder), numpy_decoder(decoder).shortlisted(words)
    features = np.random.default_rng(8).random((3, *shape), dtype="float32")
    tokens = np.full(3, Vocabulary.START_ID)
    whole, _ = full.step(tokens, full.initial_state(features))
    short, _ = cut.step(tokens, cut.initial_state(features))
    assert short.shape == (3, len(words))  # the searches rank these columns only
    kept = whole[:, words]
    np.testing.assert_allclose(short, kept - np.log(np.exp(kept).sum(-1, keepdims=True)), atol=1e-5)
    # Members and views averaged over a shortlist: still a distribution over its words.
    views = np.random.default_rng(9).random((2, 3, *shape), dtype="float32")
    both = Ensemble([full, numpy_decoder(_decoder("attention", seed=10)[0])]).shortlisted(words)
    logp, _ = both.step(np.full(2, Vocabulary.START_ID), both.initial_state(views))
    np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("search", ["greedy", "beam", "constrained"])
def test_searches_over_a_shortlist_that_holds_the_best_words_write_the_same_captions(search):
    """Where every word the full search writes is on the shortlist, and the words left out are
    unlikely, the captions are the full vocabulary's, mapped back to word ids."""
    from captioner.captioning.search import shortlist

    decoder, shape = _decoder("attention", seed=11)
    bias = np.asarray(decoder.logits.bias).copy()
    bias[40:] -= 30.0  # the words after the 40th are never likely
    decoder.logits.bias.assign(bias)
    full = numpy_decoder(decoder)
    features = np.random.default_rng(12).random((4, *shape), dtype="float32")
    constraints = [[{45, 46}], [], [{50}], [{45, 46}, {52}]]  # rare words, asked for
    penalties = np.zeros((4, len(VOCAB)), np.float32)
    penalties[:, 5] = -2.0
    runs = {"greedy": lambda d: greedy(d, VOCAB, features, penalties=penalties),
            "beam": lambda d: beam_search(d, VOCAB, features, width=3, penalties=penalties),
            "constrained": lambda d: beam_search(d, VOCAB, features, width=3, penalties=penalties,
                                                 image_constraints=constraints)}
    whole = runs[search](full)
    short = runs[search](full.shortlisted(shortlist(40, constraints)))
    assert [c.text for c in short] == [c.text for c in whole]
    assert [c.score for c in short] == pytest.approx([c.score for c in whole], abs=1e-4)
    if search == "constrained":
        assert all(any(VOCAB.id_to_word[w] in c.text.split() for w in (45, 46))
                   for c in (short[0], short[3]))


def test_over_a_shortlist_a_photos_caption_does_not_depend_on_the_other_photos_of_its_batch():
    """Each image reads its own shortlist (the frequent words and its own constraints' words):
    a neighbour whose tags ask for every rare word changes neither its caption nor its score."""
    from captioner.captioning.search import shortlist

    full = numpy_decoder(_decoder("attention", seed=13)[0])
    features = np.random.default_rng(14).random((2, 6, 20), dtype="float32")
    constraints = [[{45}], [set(range(20, len(VOCAB))) - {45}]]

    def search(rows: list[int]):
        asked = [constraints[i] for i in rows]
        return beam_search(full.shortlisted(shortlist(20, asked)), VOCAB, features[rows], width=3,
                           image_constraints=asked, frequent=20)

    alone, beside = search([0])[0], search([0, 1])[0]
    assert VOCAB.id_to_word[45] in alone.text.split()
    assert beside.text == alone.text
    assert beside.score == pytest.approx(alone.score, abs=1e-5)
