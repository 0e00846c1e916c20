"""Nearest-neighbour caption baselines over precomputed image features (NumPy + SciPy sparse).

The two baselines the captioning literature compares against:

- `nearest`: copy a caption of the training photo whose feature is closest (cosine).
- `consensus`: Devlin et al. 2015, "Exploring Nearest Neighbor Approaches for Image
  Captioning": pool the captions of the k closest training photos and return the one with
  the highest mean similarity to the OTHER captions of the pool,
  c* = argmax_c  1/(|C|-1) * sum_{c' in C, c' != c} Sim(c, c').

Choices, and why:
- Which caption of the nearest photo: by default the most central one, the caption with the
  highest mean CIDEr-D to that photo's other captions (so `nearest` is `consensus` with
  k=1). The first caption is only whichever annotator came first; the central one is the
  most typical description of the photo, which is what the metrics reward.
  `pick="first"` gives the plain copy-the-first-caption baseline.
- CIDEr-D idf comes from the whole training caption set, one document per training photo
  (pycocoevalcap also counts one per image), computed once. A pool of ~150 captions from
  30 look-alike photos would give a noisy idf in which the very words they share weigh
  nothing, and would need new vectors for every query.
- Sim with CIDEr-D is pycocoevalcap's CIDEr-D (as `metrics.cider_d`) with c' as the only
  reference. CIDEr-D averages over references, so the mean over the others equals CIDEr-D
  of c with all the others as references. Sim with BLEU is sentence BLEU-4 of c against c'
  alone, smoothed as pycocoevalcap (`metrics.bleu_scores([c], [[c']])[3]`), averaged as in
  the paper's formula: a multi-reference BLEU would give full credit for an n-gram that
  just one other caption shares, which is not a consensus.
- Speed: n-gram counts of all training captions are sparse matrices built once. The clip
  min(tf_c, tf_r) of both metrics equals sum_t [tf_c >= t] [tf_r >= t], so all ~150 x 150
  similarities of a pool come from one sparse product (four for BLEU, one per order).
- Ties are deterministic: neighbours by (-cosine, training index); candidates by (-score,
  pool position), the pool ordered by neighbour rank, then caption order, so a tie goes to
  the caption of the closer photo. Scores are rounded to 1e-12 first so that float noise
  from summation order cannot break a real tie.
- Captions with no word after `text.tokenize` are never candidates.

scipy comes with scikit-image, already a dependency of the project.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse

from captioner.data.text import tokenize
from captioner.errors import CaptionerError
from captioner.evaluation.captions import (
    _SMALL,
    _TINY,
    BLEU_ORDERS,
    CIDER_ORDERS,
    CIDER_SIGMA,
    _ngrams,
)
from captioner.topk import top_k_indices

Similarity = Literal["cider", "bleu"]
_CHUNK = 1024  # query rows per cosine matrix product, to bound memory on big query sets


class NearestCaptioner:
    """Caption images by borrowing captions of the nearest training photos."""

    def __init__(
        self,
        train_features: np.ndarray,
        train_captions: Sequence[Sequence[str]],
        k: int = 30,
        metric: Literal["cosine"] = "cosine",
    ) -> None:
        """Index training features (N, D) and their N lists of raw captions."""
        if metric != "cosine":
            raise CaptionerError(f"unknown metric {metric!r}: only 'cosine' is supported")
        features = _as_matrix(train_features, "train_features")
        if len(features) == 0:
            raise CaptionerError("train_features is empty: need at least one training photo")
        if isinstance(train_captions, str) or len(train_captions) != len(features):
            count = "a string" if isinstance(train_captions, str) else len(train_captions)
            raise CaptionerError(
                f"train_features has {len(features)} rows but train_captions has {count}: "
                "pass one list of captions per training photo, in the same order"
            )
        self._features = _normalise(features)
        self.k = self._check_k(k)
        self._build_text(train_captions)

    @property
    def dim(self) -> int:
        """Length of a feature vector."""
        return self._features.shape[1]

    def __len__(self) -> int:
        """Number of training photos."""
        return len(self._features)

    # --- public faces ---------------------------------------------------------------------

    def neighbours(
        self, features: np.ndarray, k: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices (M, k) and cosine similarities (M, k) of the k nearest training photos."""
        k = self.k if k is None else self._check_k(k)
        queries = _normalise(_as_matrix(features, "features", self.dim))
        index = np.empty((len(queries), k), dtype=np.int64)
        cosine = np.empty((len(queries), k), dtype=self._features.dtype)
        for start in range(0, len(queries), _CHUNK):
            sims = queries[start : start + _CHUNK] @ self._features.T
            for row, sim in enumerate(sims, start=start):
                index[row] = top_k_indices(sim, k)
                cosine[row] = sim[index[row]]
        return index, cosine

    def nearest(
        self, features: np.ndarray, pick: Literal["central", "first"] = "central"
    ) -> list[str]:
        """A caption of the nearest training photo per query: its most central, or its first."""
        if pick not in ("central", "first"):
            raise CaptionerError(f"unknown pick {pick!r}: use 'central' or 'first'")
        if pick == "central":
            return self.consensus(features, k=1, similarity="cider")
        index, _ = self.neighbours(features, k=1)
        return [self._captions[self._photo_rows[photo][0]] for photo in index[:, 0]]

    def consensus(
        self, features: np.ndarray, k: int | None = None, similarity: Similarity = "cider"
    ) -> list[str]:
        """Devlin et al.'s consensus caption of the k nearest photos' captions, per query."""
        if similarity not in ("cider", "bleu"):
            raise CaptionerError(f"unknown similarity {similarity!r}: use 'cider' or 'bleu'")
        index, _ = self.neighbours(features, k)
        captions = []
        for photos in index:
            pool = np.concatenate([self._photo_rows[photo] for photo in photos])
            captions.append(self._captions[pool[self._most_central(pool, similarity)]])
        return captions

    # --- internals ------------------------------------------------------------------------

    def _check_k(self, k: int) -> int:
        """Reject a k that is not a count of training photos."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise CaptionerError(f"k must be a positive integer, got {k!r}")
        if k > len(self):
            raise CaptionerError(
                f"k={k} but there are only {len(self)} training photos: pass k <= {len(self)}"
            )
        return int(k)

    def _build_text(self, train_captions: Sequence[Sequence[str]]) -> None:
        """Tokenize every training caption once and build its sparse n-gram matrices."""
        self._captions: list[str] = []
        self._photo_rows: list[np.ndarray] = []  # caption rows (of usable captions) per photo
        lengths: list[int] = []
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        gram_ids: dict[tuple[str, ...], int] = {}
        for photo, captions in enumerate(train_captions):
            if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
                raise CaptionerError(
                    f"train_captions[{photo}] must be a list of caption strings, "
                    f"got {type(captions).__name__}"
                )
            first = len(self._captions)
            for caption in captions:
                tokens = tokenize(caption)
                if not tokens:  # nothing to compare; it could never be a sensible answer
                    continue
                row = len(self._captions)
                self._captions.append(caption)
                lengths.append(len(tokens))
                for gram, tf in _ngrams(tokens, CIDER_ORDERS).items():
                    rows.append(row)
                    cols.append(gram_ids.setdefault(gram, len(gram_ids)))
                    tfs.append(tf)
            if len(self._captions) == first:
                raise CaptionerError(
                    f"training photo {photo} has no caption with a word in it: "
                    "drop it from train_features and train_captions, or give it a caption"
                )
            self._photo_rows.append(np.arange(first, len(self._captions)))
        order = np.zeros(len(gram_ids), dtype=np.int64)  # n of each n-gram, 0-based
        for gram, col in gram_ids.items():
            order[col] = len(gram) - 1
        self._lengths = np.asarray(lengths, dtype=np.float64)
        r, c, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype=np.float64)
        photo_of_row = np.repeat(np.arange(len(self)), [len(p) for p in self._photo_rows])
        self._build_cider(r, c, tf, order, photo_of_row)
        self._build_bleu(r, c, tf, order)

    def _build_cider(
        self, r: np.ndarray, c: np.ndarray, tf: np.ndarray, order: np.ndarray, photo: np.ndarray
    ) -> None:
        """Left and right factors whose product is the per-order-normalised clipped dot."""
        grams, captions = len(order), len(self._captions)
        # Document frequency: training photos whose captions hold the n-gram (one per photo).
        pairs = np.unique(photo[r] * grams + c)
        doc_freq = np.bincount(pairs % grams, minlength=grams)
        idf = math.log(len(self)) - np.log(np.maximum(doc_freq, 1))
        weight = tf * idf[c]
        slot = r * CIDER_ORDERS + order[c]  # (caption, n) of each entry
        norm = np.sqrt(np.bincount(slot, weights=weight**2, minlength=captions * CIDER_ORDERS))
        inv_norm = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)[slot]
        # sum_t L_t[i, g] R_t[j, g] = min(tf_i, tf_j) idf^2 tf_j / (|v_i| |v_j|)
        #                          = min(v_i, v_j) v_j / (|v_i| |v_j|), CIDEr-D's clipped term.
        self._cider_left = _threshold_stack(r, c, tf, inv_norm, (captions, grams))
        self._cider_right = _threshold_stack(
            r, c, tf, idf[c] ** 2 * tf * inv_norm, (captions, grams)
        )

    def _build_bleu(self, r: np.ndarray, c: np.ndarray, tf: np.ndarray, order: np.ndarray) -> None:
        """Per order, 0/1 threshold matrices whose self-product counts clipped matches."""
        shape = (len(self._captions), len(order))
        self._bleu = []
        for n in range(BLEU_ORDERS):
            keep = order[c] == n
            self._bleu.append(
                _threshold_stack(r[keep], c[keep], tf[keep], np.ones(keep.sum()), shape)
            )

    def _pairwise(self, rows: np.ndarray, similarity: Similarity) -> np.ndarray:
        """Sim(caption i, caption j) of the given caption rows, i as hypothesis, j as reference."""
        lengths = self._lengths[rows]
        if similarity == "cider":
            dots = _gram(self._cider_left[rows], self._cider_right[rows])
            delta = lengths[:, None] - lengths[None, :]
            penalty = np.exp(-(delta**2) / (2 * CIDER_SIGMA**2))
            return 10.0 / CIDER_ORDERS * dots * penalty
        log_precision = np.zeros((len(rows), len(rows)))
        no_unigram = None
        for n, counts in enumerate(self._bleu):
            sub = counts[rows]
            matches = _gram(sub, sub)
            no_unigram = matches == 0 if no_unigram is None else no_unigram
            # pycocoevalcap's smoothed precision; a hypothesis shorter than n guesses none.
            guesses = np.maximum(lengths - n, 0)[:, None]
            log_precision += np.log((matches + _TINY) / (guesses + _SMALL)) / BLEU_ORDERS
        # Brevity penalty with the one reference's length (NLTK: none when hyp is longer).
        ratio = lengths[None, :] / lengths[:, None]
        brevity = np.where(ratio < 1, 1.0, np.exp(1.0 - ratio))
        # NLTK (so metrics.bleu_scores) gives 0 when no unigram matches at all.
        return np.where(no_unigram, 0.0, brevity * np.exp(log_precision))

    def _most_central(self, rows: np.ndarray, similarity: Similarity) -> int:
        """Position in rows of the caption with the highest mean similarity to the others."""
        if len(rows) == 1:
            return 0
        sims = self._pairwise(rows, similarity)
        np.fill_diagonal(sims, 0.0)
        scores = np.round(sims.sum(axis=1) / (len(rows) - 1), 12)
        return int(np.argmax(scores))  # the first maximum: the closest photo wins a tie


def _as_matrix(features: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    """Check that features are a finite (rows, dim) float matrix."""
    try:
        array = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise CaptionerError(f"{name} must be a numeric (rows, dim) array: {err}") from None
    if array.ndim != 2:
        hint = "; for one vector pass features[None]" if array.ndim == 1 else ""
        raise CaptionerError(f"{name} must be 2-D (rows, dim), got shape {array.shape}{hint}")
    if dim is not None and array.shape[1] != dim:
        raise CaptionerError(
            f"{name} have {array.shape[1]} dimensions but the training features have {dim}: "
            "use the same encoder (and feature kind) for both"
        )
    if array.shape[1] == 0:
        raise CaptionerError(f"{name} has zero dimensions, shape {array.shape}")
    if not np.isfinite(array).all():
        raise CaptionerError(f"{name} contains NaN or infinite values")
    return array


def _normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; an all-zero row stays zero (cosine 0 to everything)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, np.finfo(features.dtype).tiny)


def _gram(left: sparse.csr_array, right: sparse.csr_array) -> np.ndarray:
    """Dense left @ right.T of a few rows, over only the columns they use."""
    # A transpose over all n-gram columns costs time in their number (millions) per query;
    # renumbering the few thousand columns a pool uses makes it cost time in its size.
    used, new = np.unique(np.concatenate([left.indices, right.indices]), return_inverse=True)
    split = len(left.indices)
    shape = (left.shape[0], len(used))
    small_left = sparse.csr_array((left.data, new[:split], left.indptr), shape=shape)
    small_right = sparse.csr_array((right.data, new[split:], right.indptr), shape=shape)
    return (small_left @ small_right.T).toarray()


def _threshold_stack(
    r: np.ndarray, c: np.ndarray, tf: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sparse.csr_array:
    """[tf >= t] * values for t = 1..max tf, side by side: A @ B.T sums over t and columns."""
    rows, cols, data = [], [], []
    for t in range(1, int(tf.max(initial=0)) + 1):
        keep = tf >= t
        rows.append(r[keep])
        cols.append(c[keep] + (t - 1) * shape[1])
        data.append(values[keep])
    if not rows:
        return sparse.csr_array((shape[0], shape[1]))
    layers = len(rows)
    matrix = sparse.coo_array(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(shape[0], shape[1] * layers),
    ).tocsr()
    matrix.eliminate_zeros()  # entries with idf 0 add nothing
    return matrix
