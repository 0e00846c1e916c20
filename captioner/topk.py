"""The one top-k selection every layer uses: exact, deterministic ties, no full sort."""

from __future__ import annotations

import numpy as np


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores of each row, best first; ties go to the lower index.

    Works on a 1-D vector (returns (k,)) or row by row on a 2-D array (returns (rows, k)).
    """
    scores = np.asarray(scores)
    if scores.ndim == 2:
        return np.stack([top_k_indices(row, k) for row in scores]) if len(scores) else \
            np.zeros((0, min(k, scores.shape[1])), dtype=np.intp)
    n = len(scores)
    k = max(0, min(int(k), n))
    if 0 < k < n:
        cutoff = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= cutoff)  # every tie at the cutoff, then sort
    else:
        candidates = np.arange(n)
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]
