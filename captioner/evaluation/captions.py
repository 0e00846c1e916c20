"""Caption metrics: corpus BLEU-1..4 and CIDEr-D, the numbers the COCO caption tools give.

Tokens come from `captioner.data.text.tokenize` (lower case, punctuation dropped). It stands in
for the PTB tokenizer of the COCO tools, which needs Java; the two agree on ordinary
captions, so scores are comparable but not guaranteed identical to a Java-tokenized run.

BLEU is NLTK's `corpus_bleu`, tuned to equal pycocoevalcap 1.2's `Bleu(4)` (bleu_scorer.py):
- reference length: the closest one, ties to the shorter (NLTK and pycocoevalcap agree);
- brevity penalty over the corpus totals (both do this);
- precisions: pycocoevalcap uses (matches + 1e-15) / (n-grams + 1e-9), so a corpus with no
  matching 4-gram still gets a small BLEU-4 instead of 0. A smoothing function made by
  `_coco_precisions` gives exactly that; it also takes back the 1 that NLTK adds to the
  n-gram count of each hypothesis shorter than n words (NLTK divides by max(1, count)).
One corner is left, and kept: when no unigram of the whole corpus (or, per image, of the
one hypothesis) matches, NLTK returns 0 before any smoothing is applied, so it cannot be
reached from corpus_bleu; pycocoevalcap returns the product of its 1e-15 terms instead. That
is largest for one-word hypotheses with no match: BLEU-4 = (1e-15 * (1e-15/1e-9)^3)^(1/4)
= 5.6e-9 (0-1 scale), and smaller for anything longer. We report the honest 0. The
pycocoevalcap brevity penalty also carries the 1e-15/1e-9 terms; they move it by about
1e-9 / (hypothesis words), far below 1e-6.

CIDEr-D is computed here (`cider_d`) the way pycocoevalcap 1.2's `Cider` (cider_scorer.py)
does; despite its name that class computes CIDEr-D, not plain CIDEr:
- n-grams of 1 to 4 words; document frequency counted over the reference sets of the
  evaluated corpus (one count per image), idf = log(number of images) - log(max(1, df));
- per n: clipped cosine, sum(min(hyp, ref) * ref) / (|hyp| |ref|), times a gaussian length
  penalty exp(-delta^2 / (2 * 6^2));
- per image: mean over n, mean over references, times 10; the corpus score is the mean.
pycocoevalcap's "length" counts bigrams (words - 1, but 0 for an empty caption); we count
words. The penalty only uses the difference of two lengths, which is the same unless one
caption is empty, and such a pair shares no n-gram and scores 0 either way.

"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence


from captioner.data.text import tokenize
from captioner.errors import CaptionerError

Tokens = Sequence[str]

BLEU_ORDERS = 4
CIDER_ORDERS, CIDER_SIGMA = 4, 6.0
_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's bleu_scorer constants


def _coco_precisions(short_hypotheses: Sequence[int]) -> Callable[..., list[float]]:
    """Make an NLTK smoothing function that gives pycocoevalcap's n-gram precisions."""

    def smooth(p_n: Sequence, **_: object) -> list[float]:
        # NLTK's Fraction keeps the raw corpus totals (built with _normalize=False). NLTK
        # passes only the last sentence pair as keywords, so the corpus facts come in here.
        return [
            (p.numerator + _TINY) / (p.denominator - short + _SMALL)
            for p, short in zip(p_n, short_hypotheses)
        ]

    return smooth


def _check_corpus(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> None:
    """Reject corpora that no caption metric can score."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        raise ValueError("nothing to score: the corpus is empty")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every hypothesis needs at least one reference")


def bleu_scores(
    hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]
) -> list[float]:
    """Corpus BLEU-1..4 (0-1 scale) of token lists, equal to pycocoevalcap's Bleu(4)."""
    from nltk.translate import bleu_score as nltk_bleu  # a second to import: only when scoring

    hyps = [list(h) for h in hypotheses]
    refs = [[list(r) for r in rs] for rs in references]
    _check_corpus(hyps, refs)
    short = [sum(len(h) < n for h in hyps) for n in range(1, BLEU_ORDERS + 1)]
    weights = [(1.0 / n,) * n for n in range(1, BLEU_ORDERS + 1)]
    scores = nltk_bleu.corpus_bleu(
        refs, hyps, weights=weights, smoothing_function=_coco_precisions(short)
    )
    return [float(s) for s in scores]


def _ngrams(tokens: Tokens, max_n: int) -> Counter[tuple[str, ...]]:
    """Counts of all n-grams of 1 to max_n words."""
    return Counter(
        tuple(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)
    )


class CiderD:
    """CIDEr-D (pycocoevalcap's 0-10 scale) against fixed reference sets.

    The document frequencies and the references' tf-idf vectors are computed once, so a
    caller that scores many captions against the same references (self-critical training
    scores thousands of samples per epoch) pays for them once.
    """

    def __init__(self, references: Sequence[Sequence[Tokens]], n: int = CIDER_ORDERS,
                 sigma: float = CIDER_SIGMA):
        self.n, self.sigma = n, sigma
        ref_counts = [[_ngrams(list(r), n) for r in refs] for refs in references]
        # Document frequency: in how many images' reference sets each n-gram occurs.
        self.doc_freq: Counter[tuple[str, ...]] = Counter()
        for refs in ref_counts:
            self.doc_freq.update(set().union(*refs))
        self.log_images = math.log(len(references))
        self.references = [[self._tfidf(ref) for ref in refs] for refs in ref_counts]

    def _tfidf(self, counts: Counter) -> tuple[list[dict], list[float], int]:
        """Per-order tf-idf vectors, their norms, and the word count."""
        vectors: list[dict] = [{} for _ in range(self.n)]
        for gram, tf in counts.items():
            idf = self.log_images - math.log(max(1.0, self.doc_freq[gram]))
            vectors[len(gram) - 1][gram] = tf * idf
        norms = [math.sqrt(sum(w * w for w in vec.values())) for vec in vectors]
        return vectors, norms, sum(c for g, c in counts.items() if len(g) == 1)

    def score(self, hypothesis: Tokens, index: int) -> float:
        """CIDEr-D of one caption against the ``index``-th reference set."""
        vec_h, norm_h, len_h = self._tfidf(_ngrams(list(hypothesis), self.n))
        refs = self.references[index]
        total = 0.0
        for vec_r, norm_r, len_r in refs:
            penalty = math.exp(-((len_h - len_r) ** 2) / (2 * self.sigma**2))
            for k in range(self.n):
                # Clipping min(hyp, ref) is what makes this CIDEr-D rather than CIDEr.
                dot = sum(
                    min(w, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, w in vec_h[k].items()
                )
                if norm_h[k] and norm_r[k]:
                    dot /= norm_h[k] * norm_r[k]
                total += dot * penalty
        return 10.0 * total / self.n / len(refs)


def cider_d(
    hypotheses: Sequence[Tokens],
    references: Sequence[Sequence[Tokens]],
    n: int = CIDER_ORDERS,
    sigma: float = CIDER_SIGMA,
) -> tuple[float, list[float]]:
    """Corpus and per-image CIDEr-D (pycocoevalcap's 0-10 scale) of token lists."""
    _check_corpus(hypotheses, references)
    scorer = CiderD(references, n, sigma)
    scores = [scorer.score(h, i) for i, h in enumerate(hypotheses)]
    return sum(scores) / len(scores), scores


def evaluate_captions(
    hypotheses: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    per_image: bool = False,
) -> dict:
    """BLEU-1..4 and CIDEr-D on a 0-100 scale; per image BLEU-4 and CIDEr-D on request."""
    if set(hypotheses) != set(references):
        missing, extra = set(references) - set(hypotheses), set(hypotheses) - set(references)
        raise CaptionerError(
            "hypotheses and references must cover the same images: "
            f"{len(missing)} without a hypothesis (e.g. {sorted(map(str, missing))[:3]}), "
            f"{len(extra)} without references (e.g. {sorted(map(str, extra))[:3]})"
        )
    if not hypotheses:
        raise CaptionerError("nothing to evaluate: no hypotheses were given")
    keys = list(hypotheses)
    for key in keys:
        refs = references[key]
        if isinstance(refs, str) or not refs:
            raise CaptionerError(f"image {key!r}: references must be a non-empty list of strings")
    hyps = [tokenize(hypotheses[key]) for key in keys]
    refs = [[tokenize(r) for r in references[key]] for key in keys]

    bleu = bleu_scores(hyps, refs)
    cider, cider_per_image = cider_d(hyps, refs)
    result: dict = {f"BLEU-{k}": 100.0 * s for k, s in enumerate(bleu, start=1)}
    result["CIDEr-D"] = 100.0 * cider
    if per_image:
        # Sentence BLEU-4 is pycocoevalcap's per-image value: the corpus formula on one image.
        result["per_image"] = {
            key: {"BLEU-4": 100.0 * bleu_scores([h], [r])[-1], "CIDEr-D": 100.0 * c}
            for key, h, r, c in zip(keys, hyps, refs, cider_per_image)
        }
    return result
