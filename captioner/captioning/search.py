"""Turning decoder outputs into words: greedy search, beam search, and next-word top-k.

All three take a batch of image features and a trained CaptionDecoder with its Vocabulary,
and run the decoder one step at a time (the LSTM state carries the words so far).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from captioner.data.text import Vocabulary, tokenize
from captioner.topk import top_k_indices

if TYPE_CHECKING:  # a Keras decoder or its numpy step: the search needs neither Keras nor TF
    from captioner.captioning.decoder import CaptionDecoder

DEFAULT_MAX_LENGTH = 20
PROBE_WORDS = 256  # per row, the words whose values bound the row's best from below (see _best)


@dataclass(frozen=True)
class Caption:
    """A decoded caption with its mean log-probability per word (``<end>`` included)."""

    text: str
    score: float


# Never written: <pad>, <start> and <unk>. A caption of real words is always possible, and the
# searches (and the samples self-critical training learns from) renormalise over the rest.
NEVER_WRITTEN = (Vocabulary.PAD_ID, Vocabulary.START_ID, Vocabulary.UNK_ID)


def _step(decoder: CaptionDecoder, tokens: np.ndarray, states: list, images: np.ndarray | None = None,
          listed: _Listed | None = None, image: np.ndarray | None = None, held: _Held | None = None):
    """The next-word log-probabilities (a writable array) and states; ``images``: per row, the
    row of the fixed states it reads (a decoder that ``steps_by_image``). A shortlisted
    decoder's columns keep the special tokens' places: its first words are the vocabulary's.
    ``listed``: each row's columns are its ``image``'s own shortlist (renormalised before the
    special tokens are ruled out, as the exported graph does); ``held``: its image's penalties
    added."""
    tokens = tokens.astype("int32")
    logp, states = decoder.step(tokens, states) if images is None else decoder.step(tokens, states, images)
    logp = np.require(logp, requirements="W")  # the searches add to it in place
    if listed is not None:
        listed.renormalise(logp, image)
    logp[:, list(NEVER_WRITTEN)] = -np.inf
    if held is not None:
        held.add(logp, image)
    return logp, states


class _Held:
    """Per image, the log-probability penalties of its held-back words (``penalties``: images x
    the decoder's columns), kept for the few columns some image holds back: adding them to a
    step touches those, not every word."""

    def __init__(self, penalties: np.ndarray):
        self.columns = np.flatnonzero((penalties != 0).any(axis=0))
        self.values = np.ascontiguousarray(penalties[:, self.columns])

    def add(self, logp: np.ndarray, image: np.ndarray) -> None:
        """Add, in place, each row's ``image``'s penalties."""
        logp[:, self.columns] += self.values[image]


def _initial(decoder: CaptionDecoder, features: np.ndarray) -> list:
    """The decoder's start states, one row per image."""
    return decoder.initial_state(np.asarray(features, dtype="float32"))


def greedy(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray,
           max_length: int = DEFAULT_MAX_LENGTH, penalties: np.ndarray | None = None) -> list[Caption]:
    """The most likely next word at every step, for each image of the batch (``penalties``:
    see ``beam_search``)."""
    words, total, length = _walk(decoder, features, _most_likely, max_length, penalties)
    return [Caption(vocab.decode(w), float(s / max(n, 1))) for w, s, n in zip(words, total, length)]


def greedy_ids(decoder: CaptionDecoder, features: np.ndarray,
               max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Greedy captions as token ids (N, max_length), ``<end>`` included, then padding."""
    return _walk(decoder, features, _most_likely, max_length)[0]


def _most_likely(logp: np.ndarray, _ids: np.ndarray) -> np.ndarray:
    return logp.argmax(-1)


def sample(decoder: CaptionDecoder, features: np.ndarray, rng: np.random.Generator,
           max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Captions drawn word by word from the decoder's distribution: token ids (N, max_length),
    ``<end>`` included, then padding (self-critical training learns from these)."""

    def draw(logp, ids):
        probs = np.exp(logp - logp.max(-1, keepdims=True))
        cumulative = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)
        chance = rng.random((len(features), 1))[ids]  # one per image, finished or not: a seed
        return (cumulative < chance).sum(-1).clip(0, logp.shape[1] - 1)  # draws the same words

    return _walk(decoder, features, draw, max_length)[0]


def _walk(decoder, features: np.ndarray, choose, max_length: int, penalties: np.ndarray | None = None):
    """Run the decoder word by word, ``choose(logp, ids)`` picking each next word from the
    log-probabilities of the images ``ids`` still in the states; returns the words (N, max_length) padded after ``<end>``, total log-probabilities, lengths."""
    n = len(features)
    columns = getattr(decoder, "words", None)  # a shortlisted decoder's columns: these word ids
    held = None if penalties is None else _Held(penalties if columns is None else penalties[:, columns])
    states = _initial(decoder, features)
    ids = np.arange(n)  # the images whose rows the states hold, in order
    tokens = np.full(n, Vocabulary.START_ID)
    words = np.full((n, max_length), Vocabulary.PAD_ID)
    total = np.zeros(n)
    length = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    for t in range(max_length):
        logp, states = _step(decoder, tokens, states, image=ids, held=held)
        chosen = choose(logp, ids)
        total[ids] += np.where(alive, logp[np.arange(len(ids)), chosen], 0.0)
        tokens = chosen if columns is None else columns[chosen]
        length[ids] += alive
        words[ids[alive], t] = tokens[alive]
        alive &= tokens != Vocabulary.END_ID
        if not alive.any():
            break
        if _worth_shrinking(alive):
            states, ids, tokens, alive = _take(states, alive), ids[alive], tokens[alive], alive[alive]
    return words, total, length


def _worth_shrinking(active: np.ndarray) -> bool:
    """Whether to drop the rows of finished images from the states: once a quarter of them are
    done, as copying the states (an attention map is large) costs about as much as a step."""
    return active.sum() <= 0.75 * len(active)


def shortlist(frequent: int, constraints: Sequence[Sequence[Iterable[int]]] = ()) -> np.ndarray:
    """The word ids a shortlisted output layer keeps for a batch: the ``frequent`` first of the
    vocabulary (ranked by count, the special tokens first) and every word that an image's
    constraints ask for (the tags' words and their forms)."""
    asked = {int(w) for per_image in constraints for words in per_image for w in words}
    first = max(frequent, Vocabulary.UNK_ID + 1)  # the special tokens keep their places
    return np.array(sorted(set(range(first)) | asked), dtype=np.intp)


def _take(states: list, rows: np.ndarray) -> list:
    """The states of these rows (a boolean mask or indices), fixed ones included."""
    return [np.asarray(s)[rows] for s in states]


def beam_search(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray, width: int = 3,
                max_length: int = DEFAULT_MAX_LENGTH, length_penalty: float = 1.0,
                constraints: Sequence[Iterable[int]] = (),
                penalties: np.ndarray | None = None,
                image_constraints: Sequence[Sequence[Iterable[int]]] | None = None,
                frequent: int | None = None) -> list[Caption]:
    """The best caption per image by total log-probability / length ** length_penalty
    (0: no normalisation, 1: per-word mean; the length counts ``<end>``).

    ``width`` live hypotheses per image; one that writes ``<end>`` leaves the beam (the best
    finished one by the penalised score is kept, an earlier one winning a tie), so the beam
    keeps ``width`` captions still growing. A live hypothesis that can no longer beat the best
    finished one, whatever length it reaches, is dropped; an image is done when none is left.

    ``constraints`` (constrained beam search, Anderson et al. 2017): each is a set of word ids,
    of which the caption must contain one (synonyms). A finite-state machine tracks which
    constraints a hypothesis has met; each of its states keeps a beam of its own, and only the
    state with all of them met may finish. An image whose constraints cannot all be met within
    ``max_length`` words gets the free caption instead. ``image_constraints``: per image, its
    own constraints instead (images of different constraints search in one batch).

    ``penalties`` (images, vocabulary), added to every step's log-probabilities: words an
    image's tags give no evidence for are held back (guided captions); a caption's score
    includes the penalties of the words it still uses.

    A shortlisted decoder (its ``words``: the ids its log-probability columns stand for) is
    searched among its columns, and its captions mapped back to word ids at the end. With
    ``frequent`` (the count the shortlist was made with), each image reads only its own
    shortlist: those first words and its constraints' words, renormalised over them, so that a
    photo's caption does not depend on the tags of the other photos in its batch.
    """
    n = len(features)
    if not n:  # as greedy: no images, no captions
        return []
    per_image = [constraints] * n if image_constraints is None else image_constraints
    columns = getattr(decoder, "words", None)
    listed = None
    if columns is not None:  # every constraint word is in the shortlist (see ``shortlist``)
        per_image = [[np.searchsorted(columns, sorted(int(w) for w in c)) for c in cs] for cs in per_image]
        penalties = None if penalties is None else penalties[:, columns]
        if frequent is not None:
            listed = _Listed(columns, frequent, per_image)
    best = _beam(decoder, features, width, max_length, length_penalty, per_image, penalties, columns, listed)
    unmet = [i for i in range(n) if best[i] is None]  # constraints no caption could meet
    if unmet:  # the free caption, from the image's own shortlist still
        free = _beam(decoder, np.asarray(features)[unmet], width, max_length, length_penalty,
                     [()] * len(unmet), None if penalties is None else penalties[unmet], columns,
                     None if listed is None else listed.of(unmet))
        for i, found in zip(unmet, free):
            best[i] = found
    return [Caption(vocab.decode(_word_ids(seq, columns)), score) for seq, score in best]


def _word_ids(seq, columns: np.ndarray | None) -> list[int]:
    return [int(w) for w in seq] if columns is None else [int(columns[w]) for w in seq]


class _Listed:
    """Which of a batch's shortlist columns each image reads: every column of the ``frequent``
    first words, and past them (``start`` on) only those its own constraints ask for."""

    def __init__(self, columns: np.ndarray, frequent: int, per_image: Sequence):
        self.start = int(np.searchsorted(columns, max(frequent, Vocabulary.UNK_ID + 1)))
        self.own = np.zeros((len(per_image), len(columns) - self.start), dtype=bool)
        for i, constraints in enumerate(per_image):
            asked = [int(c) for words in constraints for c in words if c >= self.start]
            self.own[i, np.asarray(asked, dtype=np.intp) - self.start] = True

    def of(self, images) -> _Listed:
        """The same for these images only."""
        twin = copy.copy(self)
        twin.own = self.own[images]
        return twin

    def renormalise(self, logp: np.ndarray, image: np.ndarray) -> None:
        """Rule out, in place, each row's columns its image does not list, and renormalise the
        rest: the few such columns' probability taken off instead of a new sum over all."""
        if not self.own.size:
            return
        extra, foreign = logp[:, self.start:], ~self.own[image]
        off = np.where(foreign, np.exp(extra), 0.0).sum(-1)
        extra[foreign] = -np.inf
        with np.errstate(divide="ignore"):  # off of 1: a rough row, summed below
            shift = np.log1p(-off)
        rough = off > 0.5  # log1p(-off) loses digits there: sum what is left instead
        if rough.any():
            left = logp[rough]
            top = left.max(-1, keepdims=True)  # shifted, so that tiny values do not round to 0
            shift[rough] = (top + np.log(np.exp(left - top).sum(-1, keepdims=True)))[:, 0]
        logp -= shift[:, None].astype(logp.dtype)


def _beam(decoder, features: np.ndarray, k: int, max_length: int, length_penalty: float,
          per_image: Sequence, penalties: np.ndarray | None, columns: np.ndarray | None,
          listed: _Listed | None = None) -> list:
    """beam_search in the decoder's columns: per image, the best (columns, mean score), or
    None where its constraints could not be met; ``listed``: each image's own columns."""
    n = len(features)
    machine = _Machine(per_image)
    m = machine.states
    # Only live hypotheses are stepped, as flat (image, machine state, beam) slots: at first one
    # per image, later none of an image that is done. Fixed states stay one row per image.
    slots = np.arange(n) * m * k
    held = None if penalties is None else _Held(penalties)
    states, fixed, by_image = _beam_initial(decoder, features)
    tokens = np.full(n, Vocabulary.START_ID)
    scores = np.full((n, m, k), -np.inf)
    scores[:, 0, 0] = 0.0
    seqs = np.zeros((n, m, k, 0), dtype=int)
    # Per image, its best caption so far: (penalised score, total, length, words), or None.
    best: list[tuple[float, float, int, list[int]] | None] = [None] * n
    for length in range(1, max_length + 1):
        image = slots // (m * k)
        inputs = tokens if columns is None else columns[tokens]
        if by_image:
            logp, states = _step(decoder, inputs, states, image, listed, image, held)
        else:  # the decoder reads one row of every state per hypothesis
            logp, after = _step(decoder, inputs, [s[image] if j in fixed else s for j, s in enumerate(states)],
                                None, listed, image, held)
            states = [states[j] if j in fixed else s for j, s in enumerate(after)]
        totals = logp  # in place: the step's array is the search's own
        totals += scores.reshape(-1)[slots, None]
        row, word, value, slot, ends = _ranked(totals, slots, machine, k)
        live = np.full(n * m * k, -np.inf)
        carried = ~ends
        live[slot[carried]] = value[carried]
        source = slots[row]
        history = seqs.reshape(n * m * k, -1)
        for at in np.flatnonzero(ends):  # candidates that finish: few, and only in goal states
            i = int(image[row[at]])
            ending = (float(value[at]) / length**length_penalty, float(value[at]), length,
                      [*history[source[at]], int(word[at])])
            if best[i] is None or ending[0] > best[i][0]:
                best[i] = ending
        live = live.reshape(n, m, k)
        # An image is done when none of its hypotheses can beat its best finished caption.
        _drop_hopeless(live, best, length, max_length, length_penalty)
        grown = np.zeros((n * m * k, length), dtype=int)
        grown[slot[carried]] = np.concatenate([history[source[carried]], word[carried, None]], axis=1)
        seqs = grown.reshape(n, m, k, length)
        scores = live
        going = carried & np.isfinite(live.reshape(-1)[slot])  # dropped ones leave the batch
        order = np.argsort(slot[going])
        slots, tokens = slot[going][order], word[going][order]
        states = [s if j in fixed else np.asarray(s)[row[going][order]] for j, s in enumerate(states)]
        if not len(slots):
            break
    for i in range(n):  # out of words: the live ones end here, unfinished (a tie: the earlier)
        goal = machine.goal[i]
        for j in np.flatnonzero(np.isfinite(scores[i, goal])):
            total, length = float(scores[i, goal, j]), seqs.shape[3]
            if best[i] is None or total / length**length_penalty > best[i][0]:
                best[i] = (total / length**length_penalty, total, length, list(seqs[i, goal, j]))
    return [None if b is None else (b[3], b[1] / max(b[2], 1)) for b in best]


class _Machine:
    """The constraints' finite-state machine, per image: a state is the bit mask of the
    constraints met so far; a word moves a hypothesis to ``state | mask`` of the constraints
    it meets. Per image, the few words that meet one (``words``, -1 after the last) and their
    masks; every other word keeps the state."""

    def __init__(self, per_image: Sequence[Sequence[Iterable[int]]]):
        meets = []
        for constraints in per_image:
            masks: dict[int, int] = {}
            for bit, words in enumerate(constraints):
                for w in words:
                    masks[int(w)] = masks.get(int(w), 0) | 1 << bit
            meets.append((sorted(masks.items()), len(constraints)))
        width = max([len(words) for words, _ in meets], default=0)
        self.words = np.full((len(meets), width), -1)
        self.masks = np.zeros((len(meets), width), dtype=int)
        for i, (words, _) in enumerate(meets):
            self.words[i, : len(words)] = [w for w, _ in words]
            self.masks[i, : len(words)] = [mask for _, mask in words]
        self.goal = np.array([(1 << count) - 1 for _, count in meets], dtype=int)
        self.states = 1 << max([count for _, count in meets], default=0)


def _beam_initial(decoder, features):
    """The start states (fixed ones a row per image), the fixed states' indices, and whether the
    decoder's step reads them by image (else the search gives it one row per hypothesis)."""
    by_image = getattr(decoder, "steps_by_image", False)
    features = np.asarray(features, dtype="float32")
    states = decoder.initial_state(features, shared=True) if by_image else decoder.initial_state(features)
    states = [np.asarray(s) for s in states]
    return states, set(getattr(decoder, "fixed_states", ())), by_image


def _ranked(totals: np.ndarray, slots: np.ndarray, machine: _Machine, k: int):
    """Each image's next hypotheses from the live ones' candidates ``totals`` (rows, words):
    per (image, target state), a walk down the ranking (best first, equal values in slot then
    word order) that takes candidates until ``k`` carry on; those that end count only in the
    image's goal state. Returns, per candidate taken: its row, word, value, the slot it fills
    (for one that ends: its image's), and whether it ends.

    Only the top 2k of a target state can be taken (at most k of them end: ``<end>`` meets no
    constraint). Words that meet one of the image's constraints are taken aside (few); the
    rest keep the state, and a row's 2k-th best value among its first words (the frequent
    ones: ids follow frequency) bounds the rest from below, so only the few values above that
    bound are ranked."""
    count = 2 * k
    size = totals.shape[1]
    m = machine.states
    image, state = slots // (m * k), slots // k % m
    own = machine.words[image]
    c_row, c_at = np.nonzero(own >= 0)
    c_word = own[c_row, c_at]
    c_value = totals[c_row, c_word]
    c_target = state[c_row] | machine.masks[image[c_row], c_at]
    totals[c_row, c_word] = -np.inf
    probe = min(size, PROBE_WORDS)
    floor = np.full((len(totals), 1), -np.finfo(totals.dtype).max)  # -inf never passes
    if count <= probe:
        floor = np.maximum(floor, -np.partition(-totals[:, :probe], count - 1, axis=-1)[:, count - 1:count])
    p_row, p_word = np.nonzero(totals >= floor)
    row, word = np.concatenate([p_row, c_row]), np.concatenate([p_word, c_word])
    value = np.concatenate([totals[p_row, p_word], c_value])
    target = np.concatenate([state[p_row], c_target])
    finite = value > -np.inf
    row, word, value, target = row[finite], word[finite], value[finite], target[finite]
    group = image[row] * m + target  # (image, target state)
    order = np.lexsort((slots[row] * size + word, -value, group))
    row, word, value, group = row[order], word[order], value[order], group[order]
    first = np.searchsorted(group, group)
    top = np.arange(len(group)) - first < count
    row, word, value, group, first = row[top], word[top], value[top], group[top], first[top]
    first = np.searchsorted(group, group)
    carries = word != Vocabulary.END_ID
    before = np.cumsum(carries) - carries  # carried candidates ranked above, in the group...
    before = before - before[first]  # ...counted from the group's start
    goal = machine.goal[group // m] == group % m
    take = (before < k) & (carries | goal)
    slot = group * k + np.minimum(before, k - 1)
    return row[take], word[take], value[take], slot[take], ~carries[take]


def _drop_hopeless(live: np.ndarray, best: list, length: int, max_length: int,
                   length_penalty: float) -> None:
    """Rule out (in place) the live hypotheses (images, states, beam) that can no longer beat
    their image's best finished caption (``best``: per image, its penalised score first, or
    None). Nothing else changes: such a hypothesis ranks below every one that still can (same
    length, lower total), and so do its continuations."""
    best_done = np.array([-np.inf if b is None else b[0] for b in best])
    live[_bound(live, length, max_length, length_penalty) <= best_done[:, None, None]] = -np.inf


def _bound(totals, length: int, max_length: int, length_penalty: float):
    """The best score a live hypothesis of these totals can still finish with. Log-probabilities
    only fall as words are added, so a live total bounds its future totals; the penalty divides
    by length ** lp, most favourably at one end of the lengths still possible."""
    shortest = min(length + 1, max_length)
    return np.maximum(totals / shortest**length_penalty, totals / max_length**length_penalty)


def next_words(decoder: CaptionDecoder, vocab: Vocabulary, feature: np.ndarray, prefix: str,
               k: int = 10) -> list[tuple[str, float]]:
    """The k most likely words after ``prefix`` (e.g. "a dog is"), with their probabilities."""
    ids = vocab.encode(tokenize(prefix), add_start_end=False)
    states = _initial(decoder, np.asarray(feature)[None])
    logp = None
    for token in [Vocabulary.START_ID, *ids]:
        logp, states = _step(decoder, np.array([token]), states)
    probs = np.exp(logp[0])
    best = top_k_indices(probs, k)
    return [(vocab.id_to_word[i], float(probs[i])) for i in best]
