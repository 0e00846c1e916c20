"""Beam search (captioner.captioning.search), free and constrained, against exhaustive search on
a tiny vocabulary."""

import itertools

import numpy as np
import pytest

from captioner.captioning.config import TrainConfig
from captioner.captioning.search import PROBE_WORDS, _Machine, _ranked, beam_search, greedy
from captioner.captioning.train import build_decoder
from captioner.data.text import Vocabulary

MAX_LENGTH = 4


@pytest.fixture(scope="module")
def tiny():
    import keras

    vocab = Vocabulary.build(["red blue green"], min_count=1)  # 3 words + the specials
    keras.utils.set_random_seed(3)
    decoder = build_decoder(vocab, 8, TrainConfig(embed_dim=8, units=16, min_count=1))
    # Sharper than a fresh init, so the best caption stands clear of the second best.
    decoder.set_weights([w * 4 for w in decoder.get_weights()])
    features = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    return decoder, vocab, features


def exhaustive(decoder, vocab, features, length_penalty):
    """Every caption of at most MAX_LENGTH tokens (ended by <end>, or cut at MAX_LENGTH words),
    scored by teacher forcing; returns per image the (penalised score, text) ranking."""
    words = [i for i in range(len(vocab)) if i not in
             (Vocabulary.PAD_ID, Vocabulary.START_ID, Vocabulary.END_ID, Vocabulary.UNK_ID)]
    seqs = [list(s) + [Vocabulary.END_ID] for n in range(MAX_LENGTH) for s in
            itertools.product(words, repeat=n)]
    seqs += [list(s) for s in itertools.product(words, repeat=MAX_LENGTH)]
    tokens = np.zeros((len(seqs), MAX_LENGTH + 1), dtype="int32")
    for row, seq in enumerate(seqs):
        tokens[row, : len(seq) + 1] = [Vocabulary.START_ID, *seq][: MAX_LENGTH + 1]
    rankings = []
    for feature in features:
        batch = np.repeat(feature[None], len(seqs), axis=0)
        logits = np.asarray(decoder((batch, tokens), training=False))
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ranked = []
        for row, seq in enumerate(seqs):
            total = sum(logp[row, t, seq[t]] for t in range(len(seq)))
            ranked.append((total / len(seq) ** length_penalty, vocab.decode(seq)))
        rankings.append(sorted(ranked, reverse=True))
    return rankings


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0, 2.0])
def test_a_wide_beam_finds_the_exhaustive_best(tiny, length_penalty):
    decoder, vocab, features = tiny
    found = beam_search(decoder, vocab, features, width=150, max_length=MAX_LENGTH,
                        length_penalty=length_penalty)
    for caption, ranking in zip(found, exhaustive(decoder, vocab, features, length_penalty)):
        (best, text), (second, _) = ranking[:2]
        assert best - second > 1e-4, "a near tie would make the check meaningless"
        assert caption.text == text


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_narrow_beam_is_never_better_than_exhaustive(tiny, length_penalty):
    decoder, vocab, features = tiny
    rankings = exhaustive(decoder, vocab, features, length_penalty)
    for width in (1, 2, 3):
        found = beam_search(decoder, vocab, features, width=width, max_length=MAX_LENGTH,
                            length_penalty=length_penalty)
        for caption, ranking in zip(found, rankings):
            scores = {text: score for score, text in ranking}
            assert scores[caption.text] <= ranking[0][0] + 1e-5


def test_no_images_get_no_captions(tiny):
    decoder, vocab, features = tiny
    assert beam_search(decoder, vocab, features[:0], width=2, constraints=[_ids(vocab, "red")]) == []


def test_width_one_without_penalty_is_greedy(tiny):
    decoder, vocab, features = tiny
    g = greedy(decoder, vocab, features, max_length=MAX_LENGTH)
    b = beam_search(decoder, vocab, features, width=1, max_length=MAX_LENGTH, length_penalty=0.0)
    assert [c.text for c in g] == [c.text for c in b]


class ScriptedModel:
    """A language model whose next-word log-probabilities are a table of prefixes: a stand-in
    for the decoder that lets a test set up exactly the race a beam search must win."""

    def __init__(self, vocab: Vocabulary, table: dict[tuple[str, ...], dict[str, float]]):
        self.vocab, self.table, self.vocab_size = vocab, table, len(vocab)

    def initial_state(self, features):
        return [self._objects([()] * len(features))]

    @staticmethod
    def _objects(values: list) -> np.ndarray:
        array = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            array[i] = value  # one tuple per cell: numpy would unpack a list of them
        return array

    def step(self, tokens, states):
        prefixes = [(*prefix, int(t)) for prefix, t in zip(states[0], tokens)]
        logp = np.full((len(prefixes), self.vocab_size), -100.0)
        for row, prefix in enumerate(prefixes):
            words = tuple(self.vocab.id_to_word[i] for i in prefix[1:])  # after <start>
            for word, value in self.table.get(words, {}).items():
                logp[row, self.vocab.word_to_id[word]] = value
        return logp, [self._objects(prefixes)]


def test_finished_captions_leave_the_beam_and_the_penalty_ranks_them_as_they_come():
    """Width 2: "<end>" at once is the likeliest first step, but with length penalty 2 the
    caption "b x" wins. A beam that kept the finished "<end>" in one of its two slots would
    drop "b" at the first step and never find it."""
    vocab = Vocabulary.build(["a b x y"], min_count=1)
    end = "<end>"
    model = ScriptedModel(vocab, {(): {end: -0.1, "a": -0.3, "b": -0.4},
                                  ("b",): {"x": -0.01, end: -5.0}, ("b", "x"): {end: -0.01}})
    found = beam_search(model, vocab, np.zeros((1, 2)), width=2, length_penalty=2.0)
    assert found[0].text == "b x"
    assert found[0].score == pytest.approx(-0.42 / 3)  # mean log-probability per token


def _ids(vocab, *words):
    return {vocab.word_to_id[w] for w in words}


@pytest.mark.parametrize("constraint", [("red",), ("blue", "green")])
def test_a_wide_constrained_beam_finds_the_best_caption_that_meets_the_constraint(tiny, constraint):
    decoder, vocab, features = tiny
    found = beam_search(decoder, vocab, features, width=150, max_length=MAX_LENGTH,
                        length_penalty=1.0, constraints=[_ids(vocab, *constraint)])
    for caption, ranking in zip(found, exhaustive(decoder, vocab, features, 1.0)):
        meeting = [text for _, text in ranking if set(text.split()) & set(constraint)]
        assert caption.text == meeting[0]


def test_a_satisfiable_constraint_is_always_met(tiny):
    decoder, vocab, features = tiny
    for width in (1, 2, 3):
        for first, second in [("red", "blue"), ("green", "green"), ("blue", "red")]:
            both = [_ids(vocab, first), _ids(vocab, second)]
            for caption in beam_search(decoder, vocab, features, width=width, max_length=MAX_LENGTH,
                                       constraints=both):
                assert {first, second} <= set(caption.text.split()), caption.text


def test_an_unsatisfiable_constraint_falls_back_to_the_free_caption(tiny):
    decoder, vocab, features = tiny
    free = beam_search(decoder, vocab, features, width=3, max_length=1)
    # two words cannot fit in a one-word caption
    stuck = beam_search(decoder, vocab, features, width=3, max_length=1,
                        constraints=[_ids(vocab, "red"), _ids(vocab, "blue")])
    assert [c.text for c in stuck] == [c.text for c in free]
    assert [c.score for c in stuck] == [c.score for c in free]


def _walk_reference(totals, slots, constraints, k):
    """The ranking the search promises, the slow way: per image and target state, every
    candidate landing there sorted by value then (slot, word), walked until k carry on."""
    m, size = 1 << max(len(c) for c in constraints), totals.shape[1]
    taken = set()
    for i, sets in enumerate(constraints):
        meets = np.zeros(size, dtype=int)
        for bit, words in enumerate(sets):
            meets[list(words)] |= 1 << bit
        for target in range(m):
            landing = sorted((-totals[r, w], slots[r] * size + w, r, w) for r in range(len(slots))
                             if slots[r] // (m * k) == i for w in range(size)
                             if slots[r] // k % m | meets[w] == target and np.isfinite(totals[r, w]))
            carried = 0
            for rank, (value, _, r, w) in enumerate(landing[: 2 * k]):
                if carried == k:
                    break
                ends = w == Vocabulary.END_ID
                if not ends or target == (1 << len(sets)) - 1:
                    slot = -1 if ends else (i * m + target) * k + carried
                    taken.add((r, w, -value, slot, ends))
                carried += not ends
    return taken


@pytest.mark.parametrize("size", [9, PROBE_WORDS + 300])
def test_the_ranking_equals_a_full_sort_per_target_state_with_ties(size):
    rng = np.random.default_rng(size)
    k, constraints = 2, [[{5, 6}, {7}], [{8}], [], [{5}, {6, 8}]]  # images of 2, 1, 0, 2 constraints
    m = 4
    slots = np.array([s for s in range(len(constraints) * m * k) if rng.random() < 0.7])
    totals = rng.integers(-30, 0, size=(len(slots), size)).astype(float)  # many ties
    totals[:, : min(size, PROBE_WORDS)][rng.random((len(slots), min(size, PROBE_WORDS))) < 0.3] = -np.inf
    totals[1, :] = -np.inf  # a row with nothing left
    totals[2, -3:] = 9.0  # the best words lie beyond the probed ones
    totals[:, Vocabulary.END_ID] = rng.integers(-3, 0, size=len(slots))  # hypotheses end, and tie
    row, word, value, slot, ends = _ranked(totals.copy(), slots, _Machine(constraints), k)
    got = {(int(r), int(w), float(v), int(s) if not e else -1, bool(e))
           for r, w, v, s, e in zip(row, word, value, slot, ends)}
    assert got == _walk_reference(totals, slots, constraints, k)
    assert len(got) == len(row)


def test_images_of_different_constraints_search_in_one_batch_as_they_would_apart(tiny):
    decoder, vocab, features = tiny
    per_image = [[_ids(vocab, "red")], [], [_ids(vocab, "blue"), _ids(vocab, "green", "red")],
                 [_ids(vocab, "red"), _ids(vocab, "blue")]]
    together = beam_search(decoder, vocab, features, width=2, max_length=MAX_LENGTH,
                           image_constraints=per_image)
    apart = [beam_search(decoder, vocab, features[i : i + 1], width=2, max_length=MAX_LENGTH,
                         constraints=c)[0] for i, c in enumerate(per_image)]
    assert [c.text for c in together] == [c.text for c in apart]
    assert [c.score for c in together] == pytest.approx([c.score for c in apart], abs=1e-6)
    assert {"blue", "red"} <= set(together[3].text.split())


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0])  # the card: 1
def test_dropping_the_hypotheses_that_cannot_win_changes_no_caption_and_steps_fewer_rows(
        length_penalty, monkeypatch):
    import keras

    from captioner.captioning import search
    from captioner.captioning.numpy_step import numpy_decoder

    vocab = Vocabulary.build([f"w{i} w{i + 1} w{i + 2}" for i in range(30)], min_count=1)
    keras.utils.set_random_seed(5)
    decoder = build_decoder(vocab, 8, TrainConfig(embed_dim=8, units=16, min_count=1))
    decoder.set_weights([w * 3 for w in decoder.get_weights()])
    bias = np.asarray(decoder.logits.bias).copy()
    bias[Vocabulary.END_ID] += 3.0  # captions that end early, so that finished ones rule others out
    decoder.logits.bias.assign(bias)
    step = numpy_decoder(decoder)
    features = np.random.default_rng(6).normal(size=(12, 8)).astype("float32")
    asked = [[], [{5}], [{7, 8}, {12}]] * 4
    stepped = []

    class Counting:  # the step, counting the rows it is given
        def __getattr__(self, name):
            return getattr(step, name)

        def step(self, tokens, states):
            stepped[-1] += len(tokens)
            return step.step(tokens, states)

    def run():
        stepped.append(0)
        return beam_search(Counting(), vocab, features, width=3, max_length=12,
                           length_penalty=length_penalty, image_constraints=asked)

    dropping = run()
    monkeypatch.setattr(search, "_drop_hopeless", lambda *args: None)
    keeping = run()
    assert [c.text for c in dropping] == [c.text for c in keeping]
    assert [c.score for c in dropping] == pytest.approx([c.score for c in keeping], abs=1e-6)
    assert stepped[0] < stepped[1]


def test_a_photos_own_shortlist_renormalises_even_when_a_foreign_word_held_almost_all():
    """Another photo's tag word with nearly all the probability: what is left for this photo
    (its own words, all below e^-104, which float32 rounds to 0 unshifted) is renormalised."""
    from captioner.captioning.search import _Listed

    logp = np.array([[-110, -110, -110, -110, -105, 0]], dtype="float32")  # column 5: foreign
    _Listed(np.arange(6), 4, [[np.array([4])]]).renormalise(logp, np.array([0]))
    assert np.isfinite(logp[0, :5]).all() and logp[0, 5] == -np.inf
    np.testing.assert_allclose(np.exp(logp[0, :5].astype("float64")).sum(), 1.0, rtol=1e-5)
