"""The output-layer shortlist of the shipped default decoding, chosen on the dev-select halves.

    python recipes/choose_shortlist.py [BUNDLE] [--data-root ../shared/data] [--write]

A shortlisted step scores only the vocabulary's N most frequent words plus the words the
photo's constraints ask for (captioner.captioning.search.shortlist). Each N is scored with the
card's decoding (beam, guidance) on Flickr8k and coco_dev dev-select and timed on the
Flickr8k dev-select features; the smallest N whose BLEU-4 and CIDEr-D stay within TOLERANCE of
the whole vocabulary's on both is chosen. Then both are scored on the dev-report halves, which
no choice has seen. ``--write`` records the choice in the bundle's card.json only (its
model.keras is left as it is).
"""

from __future__ import annotations

import json
import sys

from card_choice import SETS, arguments, record, scores

from captioner.captioning.captioner import Captioner

TRIED = (500, 1000, 1500, 2000, 3000)
TOLERANCE = 0.2  # BLEU-4 and CIDEr-D points, as the speed issue allows


def main() -> int:
    args = arguments(__doc__)
    captioner = Captioner.load(args.bundle)
    decoding = captioner.card.setdefault("decoding", {})
    decoding.pop("shortlist", None)

    def score(frequent: int | None, split: str) -> dict:
        decoding["shortlist"] = frequent
        return scores(captioner, args.data_root, split)

    score(None, "dev-select")  # a first pass encodes the photos into the cache: untimed
    full = score(None, "dev-select")
    print(f"whole vocabulary ({len(captioner.vocab)} words): {full}", flush=True)
    tried, chosen = {}, None
    for frequent in TRIED:
        tried[frequent] = score(frequent, "dev-select")
        close = all(abs(tried[frequent][s][k] - full[s][k]) <= TOLERANCE
                    for s in SETS for k in ("BLEU-4", "CIDEr-D"))
        print(f"shortlist {frequent}: {tried[frequent]}{'  within tolerance' if close else ''}", flush=True)
        if close and chosen is None:
            chosen = frequent
    report = {"whole vocabulary": score(None, "dev-report")}
    if chosen:
        report[f"shortlist {chosen}"] = score(chosen, "dev-report")
    print(f"chosen: {chosen}\ndev-report: {json.dumps(report)}")
    if args.write:
        record(args.bundle, shortlist=chosen, shortlist_chosen_by=(
            f"python recipes/choose_shortlist.py: the smallest of {list(TRIED)} within {TOLERANCE} "
            "BLEU-4 and CIDEr-D of the whole vocabulary on Flickr8k and coco_dev dev-select"),
            shortlist_tried={"whole": full, **{str(k): v for k, v in tried.items()}, "dev_report": report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
