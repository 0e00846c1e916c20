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


@dataclass(frozen=True)
class Caption:
    """A decoded caption with its mean log-probability per word (``<end>`` included)."""

    text: str
    score: float


def _step(decoder: CaptionDecoder, tokens: np.ndarray, states: list):
    logp, states = decoder.step(tokens.astype("int32"), states)
    logp = np.array(logp)
    # Never write <pad>, <start> or <unk>: a caption of real words is always possible.
    logp[:, [Vocabulary.PAD_ID, Vocabulary.START_ID, Vocabulary.UNK_ID]] = -np.inf
    return logp, states


def _initial(decoder: CaptionDecoder, features: np.ndarray, repeat: int = 1) -> list:
    """The decoder's start states, each row repeated ``repeat`` times (one per hypothesis):
    computed once per image, then copied."""
    states = decoder.initial_state(np.asarray(features, dtype="float32"))
    return states if repeat == 1 else [np.repeat(np.asarray(s), repeat, axis=0) for s in states]


def greedy(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray,
           max_length: int = DEFAULT_MAX_LENGTH) -> list[Caption]:
    """The most likely next word at every step, for each image of the batch."""
    words, total, length = _walk(decoder, features, _most_likely, max_length)
    return [Caption(vocab.decode(w), float(s / max(n, 1))) for w, s, n in zip(words, total, length)]


def greedy_ids(decoder: CaptionDecoder, features: np.ndarray,
               max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Greedy captions as token ids (N, max_length), ``<end>`` included, then padding."""
    return _walk(decoder, features, _most_likely, max_length)[0]


def _most_likely(logp: np.ndarray) -> np.ndarray:
    return logp.argmax(-1)


def sample(decoder: CaptionDecoder, features: np.ndarray, rng: np.random.Generator,
           max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Captions drawn word by word from the decoder's distribution: token ids (N, max_length),
    ``<end>`` included, then padding (self-critical training learns from these)."""

    def draw(logp):
        probs = np.exp(logp - logp.max(-1, keepdims=True))
        cumulative = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)
        return (cumulative < rng.random((len(logp), 1))).sum(-1).clip(0, logp.shape[1] - 1)

    return _walk(decoder, features, draw, max_length)[0]


def _walk(decoder, features: np.ndarray, choose, max_length: int):
    """Run the decoder word by word, ``choose`` picking each next word from the log-probabilities;
    returns the words (N, max_length) padded after ``<end>``, total log-probabilities, lengths."""
    n = len(features)
    states = _initial(decoder, features)
    tokens = np.full(n, Vocabulary.START_ID)
    words = np.zeros((n, max_length), dtype=int)
    total = np.zeros(n)
    length = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    for t in range(max_length):
        logp, states = _step(decoder, tokens, states)
        tokens = choose(logp)
        total += np.where(alive, logp[np.arange(n), tokens], 0.0)
        length += alive
        words[:, t] = np.where(alive, tokens, Vocabulary.PAD_ID)
        alive &= tokens != Vocabulary.END_ID
        if not alive.any():
            break
    return words, total, length


def beam_search(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray, width: int = 3,
                max_length: int = DEFAULT_MAX_LENGTH, length_penalty: float = 1.0,
                constraints: Sequence[Iterable[int]] = ()) -> list[Caption]:
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
    """
    sets = [frozenset(int(w) for w in c) for c in constraints]
    n, k, size = len(features), width, decoder.vocab_size
    meets = np.zeros(size, dtype=int)  # per word: the bit mask of the constraints it meets
    for bit, words in enumerate(sets):
        meets[list(words)] |= 1 << bit
    m = 1 << len(sets)  # machine states: the subsets of constraints met so far
    goal = m - 1
    states = _initial(decoder, features, repeat=m * k)
    tokens = np.full(n * m * k, Vocabulary.START_ID)
    scores = np.full((n, m, k), -np.inf)
    scores[:, 0, 0] = 0.0  # all beams start identical, in state 0: expand only one
    seqs = np.zeros((n, m, k, 0), dtype=int)
    finished: list[list[tuple[float, float, int, list[int]]]] = [[] for _ in range(n)]
    active = np.ones(n, dtype=bool)
    rows = np.arange(n)[:, None, None]
    for length in range(1, max_length + 1):
        logp, states = _step(decoder, tokens, states)
        totals = scores[..., None] + logp.reshape(n, m, k, size)
        origin = np.zeros((n, m, k), dtype=int)  # flat (source state, beam) of each new one
        word = np.full((n, m, k), Vocabulary.PAD_ID)
        live = np.full((n, m, k), -np.inf)
        for target in range(m):
            # A word from state s leads to s | meets[word]: keep the candidates landing here.
            lands = (np.arange(m)[:, None] | meets[None, :]) == target  # (source, word)
            kept_here = totals if lands.all() else np.where(lands[None, :, None, :], totals, -np.inf)
            candidates = kept_here.reshape(n, m * k * size)
            for i in np.flatnonzero(active):
                # 2k candidates: even if k of them end here, k remain to carry on.
                kept = 0
                for c in top_k_indices(candidates[i], 2 * k):
                    total = float(candidates[i, c])
                    if not np.isfinite(total) or kept == k:
                        break
                    beam, w = divmod(int(c), size)
                    if w == Vocabulary.END_ID:
                        if target == goal:
                            source, b = divmod(beam, k)
                            ending = (total / length**length_penalty, total, length,
                                      [*seqs[i, source, b], w])
                            finished[i] = sorted([*finished[i], ending], key=lambda f: -f[0])[:k]
                    else:
                        origin[i, target, kept], word[i, target, kept] = beam, w
                        live[i, target, kept] = total
                        kept += 1
        for i in np.flatnonzero(active):
            active[i] = not _settled(finished[i], live[i].ravel(), k, length, max_length,
                                     length_penalty)
        source, beam = np.divmod(origin, k)
        seqs = np.concatenate([seqs[rows, source, beam], word[..., None]], axis=3)
        flat = ((rows * m + source) * k + beam).reshape(-1)
        # A hypothesis moves within its image's rows, so per-image constants need no gather.
        fixed = getattr(decoder, "fixed_states", ())
        states = [s if j in fixed else np.asarray(s)[flat] for j, s in enumerate(states)]
        tokens = word.reshape(-1)
        scores = np.where(active[:, None, None], live, -np.inf)
        if not active.any():
            break
    for i in np.flatnonzero(active):  # out of words: the live ones end here, unfinished
        for j in np.flatnonzero(np.isfinite(scores[i, goal])):
            total, length = float(scores[i, goal, j]), seqs.shape[3]
            finished[i].append((total / length**length_penalty, total, length, list(seqs[i, goal, j])))
    captions = [None] * n
    for i, ends in enumerate(finished):
        if ends:
            _, total, length, seq = max(ends, key=lambda f: f[0])
            captions[i] = Caption(vocab.decode(seq), total / max(length, 1))
    unmet = [i for i in range(n) if captions[i] is None]  # constraints no caption could meet
    if unmet:
        free = beam_search(decoder, vocab, np.asarray(features)[unmet], width, max_length, length_penalty)
        for i, caption in zip(unmet, free):
            captions[i] = caption
    return captions


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
