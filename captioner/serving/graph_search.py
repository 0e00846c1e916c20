"""Beam search as TensorFlow graph ops (a ``tf.while_loop``), for models exported to serve.

The same search as ``captioner.captioning.search.beam_search``, step for step, constraints
and held-back words included: each image keeps ``width`` live hypotheses per state of its
constraints, each state's 2 x width best candidates are walked in order, a candidate of the
goal state ending in ``<end>`` joins the image's ``width`` best finished captions (ranked by
total / length ** length_penalty), and an image stops once no live hypothesis can beat its
worst finished one. Ties go to the lower index, as there. The step is the trained
Keras decoder's own ``step``, traced into the graph.
"""

from __future__ import annotations

import tensorflow as tf

from captioner.data.text import Vocabulary


def beam_search_graph(decoder, features: tf.Tensor, width: int, max_length: int,
                      length_penalty: float, shortlist: int | None = None,
                      guides: tuple | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Best caption per image: token ids (N, max_length) ending in ``<end>`` or cut, then pad;
    their mean log-probability per word; and their lengths (``<end>`` counted). ``shortlist``:
    per image, only the vocabulary's first (most frequent) words and the words its constraints
    ask for, renormalised over them, as the Python search with ``frequent``. ``guides``: (masks (N, V)
    of the constraints each word meets, goals (N,), penalties (N, V)) from
    captioner.serving.graph_guidance; an image whose constraints no caption meets gets its
    free caption, as in Python."""
    size = decoder.vocab_size
    n = tf.shape(features)[0]
    masks, goals, penalties = guides if guides is not None else (
        tf.zeros([n, size], tf.int32), tf.zeros([n], tf.int32), None)
    listed = None
    if shortlist:
        listed = (tf.range(size) < max(shortlist, Vocabulary.UNK_ID + 1))[None] | (masks > 0)  # (N, V)
    ids, total, length, met = _search(decoder, features, width, max_length, length_penalty,
                                      listed, masks, goals, penalties)
    if guides is not None:
        def free():
            rows = tf.where(~met)[:, :1]
            own = None if listed is None else tf.gather_nd(listed, rows)  # their own shortlists
            got = _search(decoder, tf.gather_nd(features, rows), width, max_length, length_penalty,
                          own, tf.zeros([tf.shape(rows)[0], size], tf.int32),
                          tf.zeros([tf.shape(rows)[0]], tf.int32), tf.gather_nd(penalties, rows))
            return tuple(tf.tensor_scatter_nd_update(x, rows, y) for x, y in zip((ids, total, length), got))

        ids, total, length = tf.cond(tf.reduce_all(met), lambda: (ids, total, length), free)
    return ids, total / tf.cast(tf.maximum(length, 1), tf.float32), length


def _search(decoder, features, k: int, max_length: int, length_penalty: float, listed, masks,
            goals, penalties):
    """The search itself: per image, a beam of ``k`` for each state of its constraints'
    machine (a state is the bit mask of the constraints met; a word moves a hypothesis to
    ``state | mask``), and finished captions only from the goal state. Returns ids, total
    log-probabilities, lengths, and whether the image's constraints were met."""
    size = decoder.vocab_size
    n = tf.shape(features)[0]
    m = tf.reduce_max(tf.concat([goals, [0]], 0)) + 1  # the machine's states (one: unguided)
    r = m * k  # hypotheses per image: row s * k + j is beam j of state s
    lp = tf.constant(length_penalty, tf.float32)
    never = tf.constant(-float("inf"))
    # Never write <pad>, <start> or <unk>, as the Python search.
    banned = tf.scatter_nd([[Vocabulary.PAD_ID], [Vocabulary.START_ID], [Vocabulary.UNK_ID]],
                           tf.fill([3], never), [size])
    off_list = None if listed is None else tf.repeat(tf.where(listed, 0.0, never), r, axis=0)  # per row
    state_of = tf.range(r) // k
    groups = tf.range(m)
    states = [tf.repeat(s, r, axis=0) for s in decoder.initial_state(features)]
    tokens = tf.fill([n * r], Vocabulary.START_ID)
    alive = tf.concat([tf.zeros([n, 1]), tf.fill([n, r - 1], never)], axis=1)  # one beam to start
    seqs = tf.zeros([n, r, max_length], tf.int32)
    done_norm = tf.fill([n, k], never)
    done_total, done_len = tf.zeros([n, k]), tf.zeros([n, k], tf.int32)
    done_seqs = tf.zeros([n, k, max_length], tf.int32)
    active = tf.ones([n], tf.bool)
    slots = tf.range(k)
    goal_group = tf.equal(groups[None, :], goals[:, None])  # (n, m)
    fixed = getattr(decoder, "fixed_states", ())

    def body(t, tokens, states, alive, seqs, done_norm, done_total, done_len, done_seqs, active):
        length = tf.cast(t + 1, tf.float32)
        logp, states = decoder.step(tokens, states)
        if off_list is not None:
            logp = logp + off_list
            logp = logp - tf.reduce_logsumexp(logp, axis=-1, keepdims=True)
        logp = tf.reshape(logp + banned, [n, r, size])
        if penalties is not None:
            logp += penalties[:, None, :]
        value, beam, word, target = _candidates(alive[:, :, None] + logp, masks, state_of, 2 * k)
        # Per target state, its 2k best candidates; ties to the lower row, then word.
        grouped = tf.where(tf.equal(target[:, None, :], groups[None, :, None]), value[:, None, :], never)
        value, at = tf.math.top_k(grouped, 2 * k)
        beam, word = tf.gather(beam, at, batch_dims=1), tf.gather(word, at, batch_dims=1)
        finite, ends = value > never, tf.equal(word, Vocabulary.END_ID)
        carries = finite & ~ends
        before = tf.cumsum(tf.cast(carries, tf.int32), axis=2, exclusive=True)
        seen = finite & (before < k)  # what a walk down the ranking takes before k carry on
        grown = tf.reshape(tf.gather(seqs, tf.reshape(beam, [n, -1]), batch_dims=1),
                           [n, m, 2 * k, max_length]) + word[..., None] * tf.one_hot(t, max_length, dtype=tf.int32)
        # Finished: the old ones first, then the goal state's new ones in ranking order.
        ending = seen & ends & goal_group[:, :, None] & active[:, None, None]
        norm = tf.concat([done_norm, tf.reshape(tf.where(ending, value / tf.pow(length, lp), never), [n, -1])], 1)
        _, keep = tf.math.top_k(norm, k)
        done_norm = tf.gather(norm, keep, batch_dims=1)
        done_total = tf.gather(tf.concat([done_total, tf.reshape(value, [n, -1])], 1), keep, batch_dims=1)
        done_len = tf.gather(tf.concat([done_len, tf.fill([n, m * 2 * k], t + 1)], 1), keep, batch_dims=1)
        done_seqs = tf.gather(tf.concat([done_seqs, tf.reshape(grown, [n, -1, max_length])], 1), keep,
                              batch_dims=1)
        # Live: per state, the first k candidates that carry on, in ranking order, into its slots.
        picked = (carries & seen)[..., None] & tf.equal(before[..., None], slots)
        found = tf.reduce_any(picked, axis=2)
        at = tf.argmax(tf.cast(picked, tf.int32), axis=2, output_type=tf.int32)  # (n, m, k)
        live = tf.reshape(tf.where(found, tf.gather(value, at, batch_dims=2), never), [n, r])
        settled = _settled(live, done_norm, k, t + 1, max_length, lp)
        active = active & ~settled
        source = tf.reshape(tf.gather(beam, at, batch_dims=2), [n, r])
        rows = tf.reshape(tf.range(n)[:, None] * r + source, [-1])
        # A hypothesis moves within its image's rows: per-image constants need no gather.
        states = [s if j in fixed else tf.gather(s, rows) for j, s in enumerate(states)]
        seqs = tf.reshape(tf.gather(grown, at, batch_dims=2), [n, r, max_length])
        tokens = tf.reshape(tf.where(found, tf.gather(word, at, batch_dims=2), Vocabulary.PAD_ID), [-1])
        alive = tf.where(active[:, None], live, never)
        return t + 1, tokens, states, alive, seqs, done_norm, done_total, done_len, done_seqs, active

    def more(t, *loop):
        return (t < max_length) & tf.reduce_any(loop[-1])

    t, _, _, alive, seqs, done_norm, done_total, done_len, done_seqs, _ = tf.while_loop(
        more, body, [tf.constant(0), tokens, states, alive, seqs, done_norm, done_total, done_len,
                     done_seqs, active],
        shape_invariants=[tf.TensorShape([]), tf.TensorShape([None]),
                          [tf.TensorShape([None, *s.shape[1:]]) for s in states],
                          tf.TensorShape([None, None]), tf.TensorShape([None, None, max_length]),
                          *[tf.TensorShape([None, *x.shape[1:]]) for x in
                            (done_norm, done_total, done_len, done_seqs, active)]])
    # Out of words: the goal state's live ones end here unfinished, after the finished ones.
    alive = tf.where(tf.equal(state_of[None, :], goals[:, None]), alive, never)
    norm = tf.concat([done_norm, alive / tf.pow(tf.cast(t, tf.float32), lp)], axis=1)
    best = tf.argmax(norm, axis=1, output_type=tf.int32)  # the first of equals
    total = tf.gather(tf.concat([done_total, alive], 1), best, batch_dims=1)
    length = tf.gather(tf.concat([done_len, tf.fill([n, r], t)], 1), best, batch_dims=1)
    ids = tf.gather(tf.concat([done_seqs, seqs], 1), best, batch_dims=1)
    return ids, total, length, tf.reduce_max(norm, axis=1) > never


def _candidates(totals, masks, state_of, count: int):
    """Per image, the candidates (value, row, word, target state) among which every target
    state's ``count`` best are, in (row, word) order so that ties go as in the Python search:
    each row's ``count`` best words that meet no constraint (they keep the row's state), and
    every word that meets one (few). A state's best are among these, and ranking them is far
    cheaper than ranking every (row, word)."""
    n, r, size = tf.shape(totals)[0], tf.shape(totals)[1], tf.shape(totals)[2]
    meets = masks > 0
    plain_value, plain_word = tf.math.top_k(tf.where(meets[:, None, :], -float("inf"), totals), count)
    c = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(meets, tf.int32), axis=1)), 1)
    own = tf.math.top_k(tf.cast(meets, tf.float32), c).indices  # those words first, by id
    own_mask = tf.gather(masks, own, batch_dims=1)
    own_value = tf.where(own_mask[:, None, :] > 0, tf.gather(totals, own, axis=2, batch_dims=1),
                         -float("inf"))
    state = state_of[None, :, None]
    value = tf.concat([plain_value, own_value], axis=2)
    word = tf.concat([plain_word, tf.broadcast_to(own[:, None, :], [n, r, c])], axis=2)
    target = tf.concat([tf.broadcast_to(state, [n, r, count]),
                        tf.bitwise.bitwise_or(state, own_mask[:, None, :])], axis=2)
    row = tf.broadcast_to(tf.range(r)[None, :, None], tf.shape(word))
    order = tf.argsort(tf.reshape(row * size + word, [n, -1]), axis=1, stable=True)
    return [tf.gather(tf.reshape(x, [n, -1]), order, batch_dims=1) for x in (value, row, word, target)]


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
