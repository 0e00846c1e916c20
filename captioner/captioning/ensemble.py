"""Several decoders, or several views of one scene, decoded as one caption.

An ``Ensemble`` has the decoder interface the searches use (``initial_state``, ``step``,
``vocab_size``, ``feature_kind``), so greedy and beam search run over it unchanged. At every
step each member reads each view (an image: one view; a video clip: its sampled frames).
A member's word distributions are averaged over the views (a clip shows what any of its
frames shows), then the members' log-probabilities are averaged and renormalised (the
words every member finds likely win, as in the usual ensemble of seeds). Members share one vocabulary; a
show-and-tell member given spatial maps reads their mean over regions, which is exactly the
pooled feature (the encoder's global average pool).
"""

from __future__ import annotations

import numpy as np

from captioner.errors import CaptionerError


class Ensemble:
    """Decoders of one vocabulary as one decoder, over groups of views: features (N, G, ...)."""

    def __init__(self, members: list):
        if not members:
            raise CaptionerError("an ensemble needs at least one decoder")
        sizes = {m.vocab_size for m in members}
        if len(sizes) > 1:
            raise CaptionerError(f"ensemble members must share one vocabulary; their sizes differ: {sorted(sizes)}")
        dims = {m.feature_dim for m in members}
        if len(dims) > 1:
            raise CaptionerError(f"ensemble members must read one encoder's features; dims {sorted(dims)}")
        self.members = list(members)
        self.vocab_size, self.feature_dim = sizes.pop(), dims.pop()
        kinds = {m.feature_kind for m in members}
        self.feature_kind = "spatial" if "spatial" in kinds else "pooled"
        self.words = None  # the columns' word ids when shortlisted; None: the whole vocabulary
        self._counts: list[int] = []
        self.fixed_states: tuple[int, ...] = ()  # states no step changes (set per search)

    def initial_state(self, features) -> list:
        """Each member's state for each view, kept as (N, G, ...) arrays so that the searches
        can reorder hypotheses by their first axis."""
        features = np.asarray(features, dtype="float32")
        n, views = features.shape[:2]
        flat = features.reshape(n * views, *features.shape[2:])
        states, self._counts, fixed = [], [], []
        for member in self.members:
            own = flat.mean(axis=1) if member.feature_kind == "pooled" and flat.ndim == 3 else flat
            member_states = [np.asarray(s) for s in member.initial_state(own)]
            at = sum(self._counts)
            fixed += [at + j for j in getattr(member, "fixed_states", ())]
            self._counts.append(len(member_states))
            states += [s.reshape(n, views, *s.shape[1:]) for s in member_states]
        self.fixed_states = tuple(fixed)
        return states

    def step(self, tokens, states):
        """Next-word log-probabilities (B, V), averaged over members and views, and the states."""
        tokens = np.asarray(tokens)
        rows, views = len(tokens), np.asarray(states[0]).shape[1]
        repeated = np.repeat(tokens, views).astype("int32")
        total, new_states, at = 0.0, [], 0
        for member, count in zip(self.members, self._counts):
            own = [np.asarray(s).reshape(rows * views, *np.asarray(s).shape[2:])
                   for s in states[at:at + count]]
            logp, after = member.step(repeated, own)
            total = total + _log_mean_exp(np.asarray(logp).reshape(rows, views, -1), axis=1)
            new_states += [np.asarray(s).reshape(rows, views, *np.asarray(s).shape[1:]) for s in after]
            at += count
        mean = total / len(self.members)
        return mean - _log_mean_exp(mean, axis=-1, keepdims=True) - np.log(mean.shape[-1]), new_states

    def shortlisted(self, words: np.ndarray) -> Ensemble:
        """The members with their output layers cut to ``words`` (see numpy_step)."""
        joined = Ensemble([m.shortlisted(words) for m in self.members])
        joined.words = joined.members[0].words
        return joined

    def attention_maps(self, features, tokens):
        """The attention members' weights (B, T, R) while reading ``tokens``, averaged."""
        maps = [np.asarray(m.attention_maps(features, tokens)) for m in self.members
                if hasattr(m, "attention_maps")]
        if not maps:
            raise CaptionerError("no member of this ensemble has an attention decoder")
        return np.mean(maps, axis=0)


def _log_mean_exp(values: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """log(mean(exp(values))) along ``axis``, without overflow."""
    peak = values.max(axis=axis, keepdims=True)
    out = peak + np.log(np.exp(values - peak).mean(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)
