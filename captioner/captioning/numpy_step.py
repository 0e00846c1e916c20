"""A trained decoder's inference step in plain numpy, for the searches.

The searches run the decoder one word at a time on a few hundred rows; called eagerly, Keras
spends more time dispatching ops and copying states to numpy than multiplying. The same step
from the trained weights is a handful of matrix products on arrays the searches already hold.
The step is built from named arrays (``decoder_arrays``): copied once from a Keras decoder by
``numpy_decoder`` (a snapshot: build a new one after training more), or read from a bundle's
plain weights without Keras (captioner.captioning.plain_weights). It has the decoder
interface the searches use (``initial_state``, ``step``, ``vocab_size``, ``feature_dim``,
``feature_kind``); its log-probabilities equal the Keras model's to float32 rounding.
Inference only: no dropout, no masks (the searches feed real words).
"""

from __future__ import annotations

import copy

import numpy as np

from captioner.captioning.ensemble import Ensemble
from captioner.errors import CaptionerError


def numpy_decoder(decoder):
    """The numpy twin of a show-and-tell or attention decoder, or of an ensemble of them."""
    if isinstance(decoder, Ensemble):
        return Ensemble([numpy_decoder(m) for m in decoder.members])
    info, arrays = decoder_arrays(decoder)
    return step_from_arrays(info, arrays)


def step_from_arrays(info: dict, arrays: dict[str, np.ndarray]):
    """The step of the decoder these named arrays (see ``decoder_arrays``) describe."""
    kinds = {"attention": AttentionStep, "show_tell": ShowTellStep}
    if info.get("decoder") not in kinds:
        raise CaptionerError(f"no numpy step for a {info.get('decoder')!r} decoder")
    return kinds[info["decoder"]](info, arrays)


def decoder_arrays(decoder) -> tuple[dict, dict[str, np.ndarray]]:
    """What a Keras caption decoder is, and its weights by name: the plain form the numpy step
    is built from (a layer's kernel and bias as ``name.kernel`` and ``name.bias``)."""
    attention = decoder.feature_kind == "spatial"
    dense = (["init_h", "init_c", "map_projection", "state_projection", "score", "gate"] if attention
             else [f"{part}.{i}" for i in range(len(decoder.lstms)) for part in ("init_h", "init_c")])
    info = {"decoder": "attention" if attention else "show_tell", "vocab_size": int(decoder.vocab_size),
            "feature_dim": int(decoder.feature_dim), "feature_kind": decoder.feature_kind}
    layers = {name: _layer(decoder, name) for name in [*dense, "logits"]}
    arrays = {"embeddings": decoder.embedding.embeddings}
    for name, layer in layers.items():
        arrays[f"{name}.kernel"], arrays[f"{name}.bias"] = layer.kernel, layer.bias
    cells = [decoder.cell] if attention else [lstm.cell for lstm in decoder.lstms]
    for i, cell in enumerate(cells):
        for part in ("kernel", "recurrent_kernel", "bias"):
            arrays[f"cell.{i}.{part}"] = getattr(cell, part)
    return info, {name: np.asarray(value, dtype="float32") for name, value in arrays.items()}


def _layer(decoder, name: str):
    """``init_h.1`` is ``decoder.init_h[1]``."""
    attribute, _, index = name.partition(".")
    layer = getattr(decoder, attribute)
    return layer[int(index)] if index else layer


# Rows of the attention's (rows, regions, units) tanh made at once: 16 x 49 x 256 floats are
# 0.8 MB, inside a core's L2 cache.
ATTENTION_BLOCK = 16


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # the logistic function without exp overflow


class _Lstm:
    """One LSTM cell (Keras gate order i, f, c, o; sigmoid gates, tanh activation).

    ``words``: the embedding table when the input starts with the word's embedding. Its share
    of the input product is then one row of a precomputed (vocabulary, 4 x units) table, looked
    up instead of multiplied at every step (an eighth of the attention step's products)."""

    def __init__(self, arrays: dict[str, np.ndarray], name: str, words: np.ndarray | None = None):
        kernel = arrays[f"{name}.kernel"]
        self.recurrent, self.bias = arrays[f"{name}.recurrent_kernel"], arrays[f"{name}.bias"]
        self.table = None if words is None else words @ kernel[: words.shape[1]] + self.bias
        self.kernel = kernel if words is None else kernel[words.shape[1]:]

    def __call__(self, x: np.ndarray | None, h: np.ndarray, c: np.ndarray, tokens=None,
                 product: np.ndarray | None = None):
        """``x``: the input, or (with the table) what follows the word's embedding in it;
        ``product``: instead of ``x``, its product with the kernel when already known."""
        z = h @ self.recurrent
        z += self.bias if self.table is None else self.table[tokens]
        if product is not None:
            z += product
        elif x is not None and x.shape[-1]:
            z += x @ self.kernel
        i, f, g, o = np.split(z, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from logits, in place (a step's logits are its own, and its largest
    arrays: no copies)."""
    logits -= logits.max(-1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(-1, keepdims=True))
    return logits


def _dense(arrays: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    return arrays[f"{name}.kernel"], arrays[f"{name}.bias"]


class _Step:
    words: np.ndarray | None = None  # the shortlist the output layer is cut to (see shortlisted)

    def __init__(self, info: dict, arrays: dict[str, np.ndarray]):
        self.vocab_size, self.feature_dim = info["vocab_size"], info["feature_dim"]
        self.feature_kind = info["feature_kind"]
        self.embeddings = arrays["embeddings"]
        self.logits = _dense(arrays, "logits")

    def shortlisted(self, words: np.ndarray):
        """This step with its output layer cut to ``words`` (sorted ids; Jean et al. 2015): its
        log-probabilities are (rows, len(words)) columns, the softmax over them alone, and
        every other word has probability 0. The output layer is the largest product of a step,
        and the searches then rank those columns only; most of the vocabulary is never a
        likely next word."""
        twin = copy.copy(self)
        kernel, bias = self.logits
        twin.words = np.asarray(words, dtype=np.intp)
        twin.logits = (np.ascontiguousarray(kernel[:, twin.words]), bias[twin.words])
        return twin

    def _log_probs(self, h: np.ndarray) -> np.ndarray:
        kernel, bias = self.logits
        logits = h @ kernel
        logits += bias
        return log_softmax(logits)


class ShowTellStep(_Step):
    """Show-and-tell: the image feature sets every layer's state; words run the LSTM stack."""

    def __init__(self, info: dict, arrays: dict[str, np.ndarray]):
        super().__init__(info, arrays)
        layers = sum(name.startswith("init_h.") and name.endswith(".kernel") for name in arrays)
        self.init = [(_dense(arrays, f"init_h.{i}"), _dense(arrays, f"init_c.{i}")) for i in range(layers)]
        self.cells = [_Lstm(arrays, f"cell.{i}", self.embeddings if i == 0 else None) for i in range(layers)]

    def initial_state(self, features) -> list:
        x = np.asarray(features, dtype="float32")
        states = []
        for (kh, bh), (kc, bc) in self.init:
            states += [np.tanh(x @ kh + bh), x @ kc + bc]
        return states

    def step(self, tokens, states):
        x, tokens, new_states = None, np.asarray(tokens), []
        for i, cell in enumerate(self.cells):
            x, c = cell(x, states[2 * i], states[2 * i + 1], tokens)
            new_states += [x, c]
        return self._log_probs(x), new_states


class AttentionStep(_Step):
    """Soft attention: each word looks at the map, then the LSTM reads word and gated context."""

    fixed_states = (2, 3)  # the map and its projection, as the Keras AttentionDecoder's

    def __init__(self, info: dict, arrays: dict[str, np.ndarray]):
        super().__init__(info, arrays)
        self.init_h, self.init_c = _dense(arrays, "init_h"), _dense(arrays, "init_c")
        self.map_projection = _dense(arrays, "map_projection")
        self.state_projection = _dense(arrays, "state_projection")
        self.score, self.gate = _dense(arrays, "score"), _dense(arrays, "gate")
        self.cell = _Lstm(arrays, "cell.0", self.embeddings)

    steps_by_image = True  # ``step`` can read the fixed states once per image (``images``)

    def initial_state(self, features, shared: bool = False) -> list:
        """``shared``: the search keeps the fixed states once per image for all its hypotheses
        (and gives ``step`` each row's image). The map then travels multiplied by the LSTM's
        input kernel: a row's input product is its gated attention over the regions of that
        (regions, 4 x units) array, where it would multiply a context by the (channels,
        4 x units) kernel; the same sum in another order (float rounding differs)."""
        maps = np.asarray(features, dtype="float32")
        mean = maps.mean(axis=1)
        (kh, bh), (kc, bc), (kp, bp) = self.init_h, self.init_c, self.map_projection
        return [np.tanh(mean @ kh + bh), mean @ kc + bc, _times(maps, self.cell.kernel) if shared else maps,
                _times(maps, kp) + bp]

    def weights(self, h: np.ndarray, projected: np.ndarray, images: np.ndarray | None = None):
        """Attention weights (B, R) and the context's gate (B, 1), as the Keras ``attend``;
        ``images``: per row, the row of ``projected`` it reads (else row for row)."""
        (ks, bs), (kw, bw), (kg, bg) = self.state_projection, self.score, self.gate
        query = h @ ks + bs
        scores = np.empty((len(h), projected.shape[1]), np.float32)
        # tanh(projected + query) is (B, R, A), far larger than the cache: made and scored a
        # block of rows at a time, it stays there (the default search 1.3x faster).
        for start in range(0, len(h), ATTENTION_BLOCK):
            rows = slice(start, start + ATTENTION_BLOCK)
            hidden = projected[rows if images is None else images[rows]] + query[rows, None]
            np.tanh(hidden, out=hidden)
            scores[rows] = (hidden.reshape(-1, hidden.shape[-1]) @ kw[:, 0]).reshape(hidden.shape[:2])
        scores += bw[0]
        alpha = np.exp(scores - scores.max(-1, keepdims=True))
        alpha /= alpha.sum(-1, keepdims=True)
        return alpha, _sigmoid(h @ kg + bg)

    def attention_maps(self, features, tokens) -> np.ndarray:
        """Attention weights (B, T, R) while reading ``tokens`` (teacher forcing), as the Keras
        decoder's: the weights of step t are the ones that read token t."""
        tokens = np.asarray(tokens)
        states, weights = self.initial_state(features), []
        for t in range(tokens.shape[1]):
            weights.append(self.weights(states[0], states[3])[0])
            _, states = self.step(tokens[:, t], states)
        return np.stack(weights, axis=1)

    def attend(self, h: np.ndarray, maps: np.ndarray, projected: np.ndarray):
        """Attention weights (B, R) and the gated context (B, D), as the Keras ``attend``."""
        alpha, gate = self.weights(h, projected)
        return alpha, gate * np.einsum("br,brd->bd", alpha, maps)

    def step(self, tokens, states, images: np.ndarray | None = None):
        """``images``: per row, the row of the fixed states (made ``shared``) that it reads."""
        h, c, maps, projected = states
        tokens = np.asarray(tokens)
        if images is None:
            _, context = self.attend(h, maps, projected)
            h, c = self.cell(context, h, c, tokens)
        else:
            alpha, gate = self.weights(h, projected, images)
            h, c = self.cell(None, h, c, tokens, product=gate * _by_image(alpha, images, maps))
        return self._log_probs(h), [h, c, maps, projected]


def _times(arrays: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``arrays @ kernel`` for (images, regions, channels) arrays, as one product of all their
    rows: numpy's stacked product runs one small product per image, twice as slow."""
    return (arrays.reshape(-1, arrays.shape[-1]) @ kernel).reshape(*arrays.shape[:-1], kernel.shape[1])


def _by_image(rows: np.ndarray, images: np.ndarray, arrays: np.ndarray) -> np.ndarray:
    """``rows[b] @ arrays[images[b]]`` for every row, without a copy of an array per row: the
    rows of each image are gathered into one (padded) matrix, a product per image."""
    order = np.argsort(images, kind="stable")
    starts = np.searchsorted(images[order], np.arange(len(arrays)))
    place = np.empty(len(images), dtype=np.intp)
    place[order] = np.arange(len(images)) - starts[images[order]]
    padded = np.zeros((len(arrays), place.max() + 1, rows.shape[1]), rows.dtype)
    padded[images, place] = rows
    return np.matmul(padded, arrays)[images, place]
