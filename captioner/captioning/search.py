"""Turning decoder outputs into words: greedy search, beam search, and next-word top-k.

All three take a batch of image features and a trained CaptionDecoder with its Vocabulary,
and run the decoder one step at a time (the LSTM state carries the words so far).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from captioner.captioning.decoder import CaptionDecoder
from captioner.data.text import Vocabulary, tokenize
from captioner.topk import top_k_indices

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


def _step(decoder: CaptionDecoder, tokens: np.ndarray, states: list):
    logp, states = decoder.step(tokens.astype("int32"), states)
    logp = np.array(logp)
    logp[:, list(NEVER_WRITTEN)] = -np.inf
    return logp, states


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
    states = _initial(decoder, features)
    ids = np.arange(n)  # the images whose rows the states hold, in order
    tokens = np.full(n, Vocabulary.START_ID)
    words = np.full((n, max_length), Vocabulary.PAD_ID)
    total = np.zeros(n)
    length = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    for t in range(max_length):
        logp, states = _step(decoder, tokens, states)
        if penalties is not None:
            logp += penalties[ids]
        tokens = choose(logp, ids)
        total[ids] += np.where(alive, logp[np.arange(len(ids)), tokens], 0.0)
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


def _take(states: list, rows: np.ndarray) -> list:
    """The states of these rows (a boolean mask or indices), fixed ones included."""
    return [np.asarray(s)[rows] for s in states]


def beam_search(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray, width: int = 3,
                max_length: int = DEFAULT_MAX_LENGTH, length_penalty: float = 1.0,
                constraints: Sequence[Iterable[int]] = (),
                penalties: np.ndarray | None = None) -> list[Caption]:
    """The best caption per image by total log-probability / length ** length_penalty
    (0: no normalisation, 1: per-word mean; the length counts ``<end>``).

    ``width`` live hypotheses per image; one that writes ``<end>`` leaves the beam for a list
    of finished ones (the ``width`` best, ranked by the penalised score as they come), so the
    beam keeps ``width`` captions still growing. An image is done when no live hypothesis can
    still beat its worst finished one, whatever length it reaches.

    ``constraints`` (constrained beam search, Anderson et al. 2017): each is a set of word ids,
    of which the caption must contain one (synonyms). A finite-state machine tracks which
    constraints a hypothesis has met; each of its states keeps a beam of its own, and only the
    state with all of them met may finish. An image whose constraints cannot all be met within
    ``max_length`` words gets the free caption instead.

    ``penalties`` (images, vocabulary), added to every step's log-probabilities: words an
    image's tags give no evidence for are held back (guided captions); a caption's score
    includes the penalties of the words it still uses.
    """
    sets = [frozenset(int(w) for w in c) for c in constraints]
    n, k, size = len(features), width, decoder.vocab_size
    meets = np.zeros(size, dtype=int)  # per word: the bit mask of the constraints it meets
    for bit, words in enumerate(sets):
        meets[list(words)] |= 1 << bit
    m = 1 << len(sets)  # machine states: the subsets of constraints met so far
    goal = m - 1
    states = _initial(decoder, features)  # every hypothesis starts from its image's one row
    tokens = np.full(n, Vocabulary.START_ID)
    scores = np.full((n, m, k), -np.inf)
    scores[:, 0, 0] = 0.0  # all beams start identical, in state 0: expand only one
    seqs = np.zeros((n, m, k, 0), dtype=int)
    finished: list[list[tuple[float, float, int, list[int]]]] = [[] for _ in range(n)]
    ids = np.arange(n)  # the images whose hypotheses the arrays below hold, in order
    active = np.ones(n, dtype=bool)
    for length in range(1, max_length + 1):
        logp, states = _step(decoder, tokens, states)
        rows_of = (m, k) if length > 1 else (1, 1)  # the first step ran once per image
        logp = logp.reshape(len(ids), *rows_of, size)
        if penalties is not None:
            logp = logp + penalties[ids][:, None, None, :]
        totals = scores[..., None] + logp
        origin = np.zeros(scores.shape, dtype=int)  # flat (source state, beam) of each new one
        word = np.full(scores.shape, Vocabulary.PAD_ID)
        live = np.full(scores.shape, -np.inf)
        alive = np.flatnonzero(active)
        for target in range(m):
            # A word from state s leads to s | meets[word]: keep the candidates landing here.
            lands = (np.arange(m)[:, None] | meets[None, :]) == target  # (source, word)
            here = totals[alive]
            if not lands.all():
                here = np.where(lands[None, :, None, :], here, -np.inf)
            # 2k candidates per image: even if k of them end here, k remain to carry on.
            value, flat = _best(here.reshape(len(alive), m * k, size), 2 * k)
            beam, w = np.divmod(flat, size)
            finite, ends = np.isfinite(value), w == Vocabulary.END_ID
            carries = finite & ~ends
            before = np.cumsum(carries, axis=1) - carries  # carried candidates ranked above
            seen = finite & (before < k)  # what a walk down the ranking takes before k carry on
            a, at = np.nonzero(seen & carries)
            slot = (alive[a], target, before[a, at])
            origin[slot], word[slot], live[slot] = beam[a, at], w[a, at], value[a, at]
            if target == goal:
                for a, at in zip(*np.nonzero(seen & ends)):
                    i, (source, b) = alive[a], divmod(int(beam[a, at]), k)
                    ending = (float(value[a, at]) / length**length_penalty, float(value[a, at]), length,
                              [*seqs[i, source, b], int(w[a, at])])
                    done = finished[ids[i]]
                    done[:] = sorted([*done, ending], key=lambda f: -f[0])[:k]
        for i in alive:
            active[i] = not _settled(finished[ids[i]], live[i].ravel(), k, length, max_length,
                                     length_penalty)
        rows = np.arange(len(ids))[:, None, None]
        source, beam = np.divmod(origin, k)
        seqs = np.concatenate([seqs[rows, source, beam], word[..., None]], axis=3)
        flat = ((rows * m + source) * k + beam).reshape(-1)
        # A hypothesis moves within its image's rows, so per-image constants need no gather.
        fixed = getattr(decoder, "fixed_states", ())
        if length == 1:  # every hypothesis descends from its image's single row
            states = [np.repeat(np.asarray(s), m * k, axis=0) for s in states]
        else:
            states = [s if j in fixed else np.asarray(s)[flat] for j, s in enumerate(states)]
        tokens = word.reshape(-1)
        scores = np.where(active[:, None, None], live, -np.inf)
        if not active.any():
            break
        if _worth_shrinking(active):  # settled images leave the arrays
            states = _take(states, np.repeat(active, m * k))
            ids, tokens, scores, seqs = ids[active], word[active].reshape(-1), scores[active], seqs[active]
            active = active[active]
    for i in np.flatnonzero(active):  # out of words: the live ones end here, unfinished
        for j in np.flatnonzero(np.isfinite(scores[i, goal])):
            total, length = float(scores[i, goal, j]), seqs.shape[3]
            finished[ids[i]].append((total / length**length_penalty, total, length, list(seqs[i, goal, j])))
    captions = [None] * n
    for i, ends in enumerate(finished):
        if ends:
            _, total, length, seq = max(ends, key=lambda f: f[0])
            captions[i] = Caption(vocab.decode(seq), total / max(length, 1))
    unmet = [i for i in range(n) if captions[i] is None]  # constraints no caption could meet
    if unmet:
        free = beam_search(decoder, vocab, np.asarray(features)[unmet], width, max_length, length_penalty,
                           penalties=None if penalties is None else penalties[unmet])
        for i, caption in zip(unmet, free):
            captions[i] = caption
    return captions


def _best(candidates: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` best of each image's (hypotheses, words) candidates, best first (equal
    values in index order): values and flat indices, (images, count) each; -inf where an image
    has fewer finite candidates.

    Partitioning every row costs more than the decoder's step for show-and-tell, so a row's
    ``count``-th best value among its first words (the frequent ones: ids follow frequency) bounds
    its ``count``-th best from below; the few values above that bound are all that gets sorted."""
    images, rows, size = candidates.shape
    probe = min(size, PROBE_WORDS)
    first = candidates[..., :probe]
    floor = -np.partition(-first, count - 1, axis=-1)[..., count - 1 : count] if count <= probe \
        else np.full((images, rows, 1), -np.inf, candidates.dtype)
    image, flat = np.nonzero(((candidates >= floor) & (candidates > -np.inf)).reshape(images, -1))
    value = candidates.reshape(images, -1)[image, flat]
    order = np.lexsort((flat, -value, image))  # by image, then best first
    image, flat, value = image[order], flat[order], value[order]
    rank = np.arange(len(image)) - np.searchsorted(image, image)  # place within its image
    keep = rank < count
    best = np.full((images, count), -np.inf, candidates.dtype)
    where = np.zeros((images, count), dtype=np.intp)
    best[image[keep], rank[keep]], where[image[keep], rank[keep]] = value[keep], flat[keep]
    return best, where


def _settled(finished: list, live: np.ndarray, k: int, length: int, max_length: int,
             length_penalty: float) -> bool:
    """Whether no live hypothesis can beat the k-th finished one at any length still possible."""
    if not np.isfinite(live).any():
        return True
    if len(finished) < k:
        return False
    # Log-probabilities only fall as words are added, so a live total bounds its future
    # totals; the penalty divides by length ** lp, most favourably at one end of the range.
    best_live = float(np.max(live))
    shortest = min(length + 1, max_length)
    bound = max(best_live / shortest**length_penalty, best_live / max_length**length_penalty)
    return bound <= finished[-1][0]


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
