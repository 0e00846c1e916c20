"""A photo's merged tags and the guidance they give, as TensorFlow graph ops, for the exported
SavedModel: what ``caption`` computes by default in Python (captioner.tagging's ImageNet words
and concepts, calibrated and merged; captioner.captioning.guided's constraints and held-back
words), step for step. The tables come from those modules; the graph only looks them up.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from captioner.captioning.guided import MAX_CONSTRAINTS, guidance_tables
from captioner.tagging.merge import FLOOR
from captioner.tagging.tagger import IMAGENET_WORDS

ABSENT = -1.0  # the score of a word no source proposes


class GraphGuidance:
    """The tagger's and the guidance's tables as constants, and the ops that use them."""

    def __init__(self, tagger, vocab, threshold: float, hold_threshold: float | None, penalty: float):
        tables = tagger.tables()
        self.words = tf.constant(tables["words"])
        self.imagenet = tf.constant(tables["imagenet"], tf.float64)
        self.basic = tf.constant(tables["basic"])
        self.concepts = tables["kernel"] is not None
        if self.concepts:
            self.kernel, self.bias = tf.constant(tables["kernel"]), tf.constant(tables["bias"])
            self.concept = tf.constant(tables["concept"])
        params, curve = tagger.calibration.params, tagger.calibration.curve
        self.platt = {s: params.get(s, (1.0, 0.0)) for s in ("imagenet", "concept")}
        self.curve = None if curve is None else (tf.constant(curve[0], tf.float64),
                                                 tf.constant(curve[1], tf.float64))
        lookups = guidance_tables(tables["words"], vocab)
        self.forms, self.together = tf.constant(lookups["forms"]), tf.constant(lookups["together"] > 0)
        self.writable = tf.reduce_any(self.forms > 0, axis=1)
        self.evidence, self.naming = tf.constant(lookups["evidence"]), tf.constant(lookups["naming"])
        self.threshold, self.hold_threshold, self.penalty = threshold, hold_threshold, penalty

    def scores(self, probabilities, maps):
        """(N, T) merged, calibrated scores of every tag word, rounded as the rows' (ABSENT
        where no source proposes the word), and (N, T) whether a concept gave the score."""
        raw = _round4(tf.cast(probabilities, tf.float64) @ self.imagenet)
        # The IMAGENET_WORDS best of the ImageNet words (ties to the earlier word), above the floor.
        best = tf.math.top_k(tf.where(self.basic, raw, -np.inf), IMAGENET_WORDS).indices
        listed = tf.reduce_any(tf.one_hot(best, tf.shape(raw)[1], on_value=True, off_value=False), axis=1)
        from_imagenet = listed & (raw >= FLOOR)
        merged = tf.where(from_imagenet, self._platt("imagenet", raw), ABSENT)
        from_concept = tf.zeros_like(from_imagenet)
        if self.concepts and maps is not None:
            logits = tf.einsum("nrc,ct->nrt", maps, self.kernel) + self.bias
            noisy_or = tf.cast(-tf.math.expm1(-tf.reduce_sum(tf.nn.softplus(logits), axis=1)), tf.float64)
            concept = self._platt("concept", noisy_or)
            from_concept = self.concept & (noisy_or >= FLOOR)
            from_concept &= ~from_imagenet | (concept > merged)  # the higher; ImageNet's on a tie
            merged = tf.where(from_concept, concept, merged)
        present = from_imagenet | from_concept
        return tf.where(present, _round4(self._final(merged)), ABSENT), from_concept

    def guides(self, scores):
        """Per image, from its (N, T) scores: (N, V) the bit mask of the constraints each word
        meets (as ``constraints_for``: tags of at least the threshold that the vocabulary can
        write, the surest first, a tag one ImageNet class lists beside a chosen one joining
        it, at most MAX_CONSTRAINTS), the (N,) goal state (all bits met), and (N, V) the
        penalties of held-back words (as ``held_back``)."""
        n, t = tf.shape(scores)[0], tf.shape(scores)[1]
        # Ties in alphabetical order, as the tag list is sorted.
        ranked, words = tf.math.top_k(scores, t)
        last = tf.reduce_max(tf.reduce_sum(tf.cast(ranked >= self.threshold, tf.int32), axis=1))

        def step(j, groups, chosen):
            word = words[:, j]
            usable = (ranked[:, j] >= self.threshold) & tf.gather(self.writable, word)
            together = tf.gather(self.together, word)  # (N, T)
            open_groups = tf.range(MAX_CONSTRAINTS)[None, :] < chosen[:, None]
            partners = open_groups & tf.reduce_any(groups & together[:, None, :], axis=2)
            joined = tf.where(tf.reduce_any(partners, axis=1),
                              tf.argmax(tf.cast(partners, tf.int32), axis=1, output_type=tf.int32),
                              tf.where(chosen < MAX_CONSTRAINTS, chosen, -1))
            into = usable[:, None] & tf.equal(tf.range(MAX_CONSTRAINTS)[None, :], joined[:, None])
            groups |= into[:, :, None] & tf.one_hot(word, t, on_value=True, off_value=False)[:, None, :]
            chosen += tf.cast(usable & (joined == chosen), tf.int32)
            return j + 1, groups, chosen

        groups = tf.zeros([n, MAX_CONSTRAINTS, t], tf.bool)
        _, groups, chosen = tf.while_loop(lambda j, *_: j < last, step,
                                          [tf.constant(0), groups, tf.zeros([n], tf.int32)])
        meets = tf.einsum("ngt,tv->ngv", tf.cast(groups, tf.float32), self.forms) > 0
        bits = tf.constant([1 << g for g in range(MAX_CONSTRAINTS)], tf.int32)
        masks = tf.reduce_sum(tf.cast(meets, tf.int32) * bits[None, :, None], axis=1)
        goals = tf.bitwise.left_shift(1, chosen) - 1
        penalties = tf.zeros([n, tf.shape(self.forms)[1]])
        if self.hold_threshold is not None:
            support = tf.reduce_max(tf.cast(tf.maximum(scores, 0.0), tf.float32)[:, :, None]
                                    * self.evidence[None], axis=1)  # (N, objects)
            held = tf.cast(support < self.hold_threshold, tf.float32) @ self.naming > 0
            penalties = tf.where(held, -self.penalty, 0.0)
        return masks, goals, penalties

    def top(self, scores, from_concept, k: int):
        """The k best tags per image as (N, k) words, scores and sources ("" and NaN past
        the tags an image has)."""
        value, index = tf.math.top_k(scores, k)
        there = value > ABSENT
        source = tf.where(tf.gather(from_concept, index, batch_dims=1), "concept", "imagenet")
        return (tf.where(there, tf.gather(self.words, index), ""),
                tf.where(there, tf.cast(value, tf.float32), np.nan), tf.where(there, source, ""))

    def _platt(self, source: str, raw):
        slope, offset = self.platt[source]
        raw = tf.clip_by_value(tf.cast(raw, tf.float64), 1e-6, 1 - 1e-6)
        return tf.sigmoid(slope * (tf.math.log(raw) - tf.math.log1p(-raw)) + offset)

    def _final(self, merged):
        """np.interp through the calibration's last monotone curve."""
        if self.curve is None:
            return merged
        x, y = self.curve
        at = tf.clip_by_value(tf.reduce_sum(tf.cast(merged[..., None] >= x, tf.int32), -1) - 1,
                              0, x.shape[0] - 2)
        x0, x1, y0, y1 = tf.gather(x, at), tf.gather(x, at + 1), tf.gather(y, at), tf.gather(y, at + 1)
        weight = tf.clip_by_value((merged - x0) / (x1 - x0), 0.0, 1.0)
        return y0 + weight * (y1 - y0)


def _round4(x):
    """As np.round(x, 4)."""
    return tf.round(x * 1e4) / 1e4
