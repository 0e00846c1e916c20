"""Beam search as TensorFlow graph ops (a ``tf.while_loop``), for models exported to serve.

The same search as ``captioner.captioning.search.beam_search`` without constraints, step for
step: each image keeps ``width`` live hypotheses, the 2 x width best candidates are walked in
order, a candidate ending in ``<end>`` joins the image's ``width`` best finished captions
(ranked by total / length ** length_penalty), and an image stops once no live hypothesis can
beat its worst finished one. Ties go to the lower index, as there. The step is the trained
Keras decoder's own ``step``, traced into the graph.
"""

from __future__ import annotations

import tensorflow as tf

from captioner.data.text import Vocabulary


def beam_search_graph(decoder, features: tf.Tensor, width: int, max_length: int,
                      length_penalty: float, shortlist: int | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Best caption per image: token ids (N, max_length) ending in ``<end>`` or cut, then pad;
    their mean log-probability per word; and their lengths (``<end>`` counted). ``shortlist``:
    only the vocabulary's first (most frequent) words, renormalised over them, as the Python
    search's shortlisted step (without constraints, its shortlist is just those words)."""
    k, size = width, decoder.vocab_size
    n = tf.shape(features)[0]
    lp = tf.constant(length_penalty, tf.float32)
    never = tf.constant(-float("inf"))
    # Never write <pad>, <start> or <unk>, as the Python search.
    banned = tf.scatter_nd([[Vocabulary.PAD_ID], [Vocabulary.START_ID], [Vocabulary.UNK_ID]],
                           tf.fill([3], never), [size])
    listed = tf.where(tf.range(size) < (shortlist or size), 0.0, never)
    states = [tf.repeat(s, k, axis=0) for s in decoder.initial_state(features)]
    tokens = tf.fill([n * k], Vocabulary.START_ID)
    alive = tf.concat([tf.zeros([n, 1]), tf.fill([n, k - 1], never)], axis=1)  # one beam to start
    seqs = tf.zeros([n, k, max_length], tf.int32)
    done_norm = tf.fill([n, k], never)
    done_total, done_len = tf.zeros([n, k]), tf.zeros([n, k], tf.int32)
    done_seqs = tf.zeros([n, k, max_length], tf.int32)
    active = tf.ones([n], tf.bool)
    slots = tf.range(k)
    fixed = getattr(decoder, "fixed_states", ())

    def body(t, tokens, states, alive, seqs, done_norm, done_total, done_len, done_seqs, active):
        length = tf.cast(t + 1, tf.float32)
        logp, states = decoder.step(tokens, states)
        if shortlist:
            logp = logp + listed
            logp = logp - tf.reduce_logsumexp(logp, axis=-1, keepdims=True)
        totals = alive[:, :, None] + tf.reshape(logp + banned, [n, k, size])
        value, index = tf.math.top_k(tf.reshape(totals, [n, k * size]), 2 * k)
        beam, word = index // size, index % size
        finite, ends = value > never, tf.equal(word, Vocabulary.END_ID)
        carries = finite & ~ends
        before = tf.cumsum(tf.cast(carries, tf.int32), axis=1, exclusive=True)
        seen = finite & (before < k)  # what a walk down the ranking takes before k carry on
        grown = tf.gather(seqs, beam, batch_dims=1) + word[:, :, None] * tf.one_hot(
            t, max_length, dtype=tf.int32)
        # Finished: the old ones first, then the new in ranking order (a stable sort's ties).
        ending = seen & ends & active[:, None]
        norm = tf.concat([done_norm, tf.where(ending, value / tf.pow(length, lp), never)], axis=1)
        _, keep = tf.math.top_k(norm, k)
        done_norm = tf.gather(norm, keep, batch_dims=1)
        done_total = tf.gather(tf.concat([done_total, value], 1), keep, batch_dims=1)
        done_len = tf.gather(tf.concat([done_len, tf.fill([n, 2 * k], t + 1)], 1), keep, batch_dims=1)
        done_seqs = tf.gather(tf.concat([done_seqs, grown], 1), keep, batch_dims=1)
        # Live: the first k candidates that carry on, in ranking order, into slots 0..k-1.
        picked = (carries & seen)[:, :, None] & tf.equal(before[:, :, None], slots[None, None, :])
        found = tf.reduce_any(picked, axis=1)
        at = tf.argmax(tf.cast(picked, tf.int32), axis=1, output_type=tf.int32)  # (n, k)
        live = tf.where(found, tf.gather(value, at, batch_dims=1), never)
        settled = _settled(live, done_norm, k, t + 1, max_length, lp)
        active = active & ~settled
        rows = tf.reshape(tf.range(n)[:, None] * k + tf.gather(beam, at, batch_dims=1), [-1])
        # A hypothesis moves within its image's rows: per-image constants need no gather.
        states = [s if j in fixed else tf.gather(s, rows) for j, s in enumerate(states)]
        seqs = tf.gather(grown, at, batch_dims=1)
        tokens = tf.reshape(tf.where(found, tf.gather(word, at, batch_dims=1), Vocabulary.PAD_ID), [-1])
        alive = tf.where(active[:, None], live, never)
        return t + 1, tokens, states, alive, seqs, done_norm, done_total, done_len, done_seqs, active

    def more(t, *loop):
        return (t < max_length) & tf.reduce_any(loop[-1])

    t, _, _, alive, seqs, done_norm, done_total, done_len, done_seqs, _ = tf.while_loop(
        more, body, [tf.constant(0), tokens, states, alive, seqs, done_norm, done_total, done_len,
                     done_seqs, active],
        shape_invariants=[tf.TensorShape([]), tf.TensorShape([None]),
                          [tf.TensorShape([None, *s.shape[1:]]) for s in states],
                          *[tf.TensorShape([None, *x.shape[1:]]) for x in
                            (alive, seqs, done_norm, done_total, done_len, done_seqs, active)]])
    # Out of words: the live ones end here unfinished, after the finished ones.
    steps = tf.cast(t, tf.float32)
    norm = tf.concat([done_norm, alive / tf.pow(steps, lp)], axis=1)
    best = tf.argmax(norm, axis=1, output_type=tf.int32)  # the first of equals
    total = tf.gather(tf.concat([done_total, alive], 1), best, batch_dims=1)
    length = tf.gather(tf.concat([done_len, tf.fill([n, k], t)], 1), best, batch_dims=1)
    ids = tf.gather(tf.concat([done_seqs, seqs], 1), best, batch_dims=1)
    return ids, total / tf.cast(tf.maximum(length, 1), tf.float32), length


def _settled(live, done_norm, k: int, length, max_length: int, lp) -> tf.Tensor:
    """Per image: whether no live hypothesis can beat its k-th finished one at any length."""
    never = tf.constant(-float("inf"))
    any_live = tf.reduce_any(live > never, axis=1)
    best = tf.reduce_max(live, axis=1)
    shortest = tf.cast(tf.minimum(length + 1, max_length), tf.float32)
    bound = tf.maximum(best / tf.pow(shortest, lp), best / tf.pow(float(max_length), lp))
    full = done_norm[:, k - 1] > never
    return ~any_live | (full & (bound <= done_norm[:, k - 1]))


def ids_to_text(ids: tf.Tensor, words: tf.Tensor) -> tf.Tensor:
    """Token ids (N, T) as caption strings, as ``Vocabulary.decode``: stop at ``<end>``, skip
    ``<pad>`` and ``<start>``, words joined by spaces."""
    before_end = tf.math.cumprod(tf.cast(tf.not_equal(ids, Vocabulary.END_ID), tf.int32), axis=1)
    keep = (before_end > 0) & (ids != Vocabulary.PAD_ID) & (ids != Vocabulary.START_ID)
    return tf.strings.reduce_join(tf.ragged.boolean_mask(tf.gather(words, ids), keep),
                                  axis=1, separator=" ")
