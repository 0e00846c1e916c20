"""A trained decoder's inference step in plain numpy, for the searches.

The searches run the decoder one word at a time on a few hundred rows; called eagerly, Keras
spends more time dispatching ops and copying states to numpy than multiplying. The same step
from the trained weights is a handful of matrix products on arrays the searches already hold.
``numpy_decoder`` copies the weights once (a snapshot: build a new one after training more)
and gives an object with the decoder interface the searches use (``initial_state``, ``step``,
``vocab_size``, ``feature_dim``, ``feature_kind``); its log-probabilities equal the Keras
model's to float32 rounding. Inference only: no dropout, no masks (the searches feed real words).
"""

from __future__ import annotations

import numpy as np

from captioner.captioning.attention import AttentionDecoder
from captioner.captioning.decoder import CaptionDecoder
from captioner.captioning.ensemble import Ensemble
from captioner.errors import CaptionerError


def numpy_decoder(decoder):
    """The numpy twin of a show-and-tell or attention decoder, or of an ensemble of them."""
    if isinstance(decoder, Ensemble):
        return Ensemble([numpy_decoder(m) for m in decoder.members])
    if isinstance(decoder, AttentionDecoder):
        return AttentionStep(decoder)
    if isinstance(decoder, CaptionDecoder):
        return ShowTellStep(decoder)
    raise CaptionerError(f"no numpy step for a {type(decoder).__name__}")


def _dense(layer) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(layer.kernel, dtype="float32"), np.asarray(layer.bias, dtype="float32")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # the logistic function without exp overflow


class _Lstm:
    """One LSTM cell (Keras gate order i, f, c, o; sigmoid gates, tanh activation)."""

    def __init__(self, cell):
        self.kernel = np.asarray(cell.kernel, dtype="float32")
        self.recurrent = np.asarray(cell.recurrent_kernel, dtype="float32")
        self.bias = np.asarray(cell.bias, dtype="float32")

    def __call__(self, x: np.ndarray, h: np.ndarray, c: np.ndarray):
        z = x @ self.kernel + h @ self.recurrent + self.bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


class _Step:
    def __init__(self, decoder):
        self.vocab_size, self.feature_dim = decoder.vocab_size, decoder.feature_dim
        self.feature_kind = decoder.feature_kind
        self.embeddings = np.asarray(decoder.embedding.embeddings, dtype="float32")
        self.logits = _dense(decoder.logits)

    def _log_probs(self, h: np.ndarray) -> np.ndarray:
        kernel, bias = self.logits
        return _log_softmax(h @ kernel + bias)


class ShowTellStep(_Step):
    """Show-and-tell: the image feature sets every layer's state; words run the LSTM stack."""

    def __init__(self, decoder: CaptionDecoder):
        super().__init__(decoder)
        self.init = [(_dense(h), _dense(c)) for h, c in zip(decoder.init_h, decoder.init_c)]
        self.cells = [_Lstm(lstm.cell) for lstm in decoder.lstms]

    def initial_state(self, features) -> list:
        x = np.asarray(features, dtype="float32")
        states = []
        for (kh, bh), (kc, bc) in self.init:
            states += [np.tanh(x @ kh + bh), x @ kc + bc]
        return states

    def step(self, tokens, states):
        x, new_states = self.embeddings[np.asarray(tokens)], []
        for i, cell in enumerate(self.cells):
            x, c = cell(x, states[2 * i], states[2 * i + 1])
            new_states += [x, c]
        return self._log_probs(x), new_states


class AttentionStep(_Step):
    """Soft attention: each word looks at the map, then the LSTM reads word and gated context."""

    # The map and its projection ride in the state but never change: a search that reorders
    # hypotheses of one image may leave them where they are (48 MB a step at beam 3 x 64).
    fixed_states = (2, 3)

    def __init__(self, decoder: AttentionDecoder):
        super().__init__(decoder)
        self.init_h, self.init_c = _dense(decoder.init_h), _dense(decoder.init_c)
        self.map_projection = _dense(decoder.map_projection)
        self.state_projection = _dense(decoder.state_projection)
        self.score, self.gate = _dense(decoder.score), _dense(decoder.gate)
        self.cell = _Lstm(decoder.cell)

    def initial_state(self, features) -> list:
        maps = np.asarray(features, dtype="float32")
        mean = maps.mean(axis=1)
        (kh, bh), (kc, bc), (kp, bp) = self.init_h, self.init_c, self.map_projection
        return [np.tanh(mean @ kh + bh), mean @ kc + bc, maps, maps @ kp + bp]

    def attend(self, h: np.ndarray, maps: np.ndarray, projected: np.ndarray):
        """Attention weights (B, R) and the gated context (B, D), as the Keras ``attend``."""
        (ks, bs), (kw, bw), (kg, bg) = self.state_projection, self.score, self.gate
        scores = (np.tanh(projected + (h @ ks + bs)[:, None]) @ kw)[..., 0] + bw[0]
        alpha = np.exp(scores - scores.max(-1, keepdims=True))
        alpha /= alpha.sum(-1, keepdims=True)
        context = (alpha[:, None, :] @ maps)[:, 0]
        return alpha, _sigmoid(h @ kg + bg) * context

    def step(self, tokens, states):
        h, c, maps, projected = states
        _, context = self.attend(h, maps, projected)
        x = np.concatenate([self.embeddings[np.asarray(tokens)], context], axis=-1)
        h, c = self.cell(x, h, c)
        return self._log_probs(h), [h, c, maps, projected]
