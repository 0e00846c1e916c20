"""Turning decoder outputs into words: greedy search, beam search, and next-word top-k.

All three take a batch of image features and a trained CaptionDecoder with its Vocabulary,
and run the decoder one step at a time (the LSTM state carries the words so far).
"""

from __future__ import annotations

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
    features = np.repeat(np.asarray(features, dtype="float32"), repeat, axis=0)
    return decoder.initial_state(features)


def greedy(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray,
           max_length: int = DEFAULT_MAX_LENGTH) -> list[Caption]:
    """The most likely next word at every step, for each image of the batch."""
    n = len(features)
    states = _initial(decoder, features)
    tokens = np.full(n, Vocabulary.START_ID)
    words = np.zeros((n, max_length), dtype=int)
    total = np.zeros(n)
    length = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    for t in range(max_length):
        logp, states = _step(decoder, tokens, states)
        tokens = logp.argmax(-1)
        total += np.where(alive, logp[np.arange(n), tokens], 0.0)
        length += alive
        words[:, t] = np.where(alive, tokens, Vocabulary.PAD_ID)
        alive &= tokens != Vocabulary.END_ID
        if not alive.any():
            break
    return [Caption(vocab.decode(w), float(s / max(n_, 1))) for w, s, n_ in zip(words, total, length)]


def beam_search(decoder: CaptionDecoder, vocab: Vocabulary, features: np.ndarray, width: int = 3,
                max_length: int = DEFAULT_MAX_LENGTH, length_penalty: float = 1.0) -> list[Caption]:
    """Keep the ``width`` best partial captions per image; rank finished ones by
    total log-probability / length ** length_penalty (0: no normalisation, 1: per-word mean)."""
    n, k = len(features), width
    states = _initial(decoder, features, repeat=k)
    tokens = np.full(n * k, Vocabulary.START_ID)
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    seqs = np.zeros((n, k, 0), dtype=int)
    lengths = np.zeros((n, k), dtype=int)
    done = np.zeros((n, k), dtype=bool)
    vocab_size = decoder.vocab_size
    for _ in range(max_length):
        logp, states = _step(decoder, tokens, states)
        logp = logp.reshape(n, k, vocab_size)
        # A finished beam may only continue with <pad>, at no cost: it keeps its slot and score.
        logp = np.where(done[..., None], -np.inf, logp)
        logp[..., Vocabulary.PAD_ID] = np.where(done, 0.0, -np.inf)
        candidates = (scores[..., None] + logp).reshape(n, k * vocab_size)
        best = top_k_indices(candidates, k)
        beam, word = best // vocab_size, best % vocab_size
        rows = np.arange(n)[:, None]
        scores = candidates[rows, best]
        seqs = np.concatenate([seqs[rows, beam], word[..., None]], axis=2)
        was_done = done[rows, beam]
        lengths = lengths[rows, beam] + ~was_done
        done = was_done | (word == Vocabulary.END_ID)
        flat = (rows * k + beam).reshape(-1)
        states = [np.asarray(s)[flat] for s in states]
        tokens = word.reshape(-1)
        if done.all():
            break
    normalised = scores / np.maximum(lengths, 1) ** length_penalty
    pick = normalised.argmax(1)
    return [
        Caption(vocab.decode(seqs[i, j]), float(scores[i, j] / max(lengths[i, j], 1)))
        for i, j in enumerate(pick)
    ]


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
