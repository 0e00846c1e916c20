"""The beam of the shipped default decoding, chosen on dev-select with speed as the tie-break.

    python recipes/choose_beam.py [BUNDLE] [--data-root ../shared/data] [--write]

The bundle's beam was first chosen on free captions, when it was trained. The default now
guides the captions by the tags and cuts the output layer to a shortlist, so each beam of
BEAMS is scored as `caption` decodes by default (the card's guidance and shortlist) on Flickr8k
dev-select and timed there (features cached); coco_dev dev-select is scored beside it for the
record. The best Flickr8k CIDEr-D (then BLEU-4) wins, and every beam within TOLERANCE of it in
both counts as a tie: the fastest of the ties is chosen. The chosen beam is then scored on the
dev-report halves, which no choice has seen. ``--write`` records it in the bundle's card.json
only (its model.keras is left as it is).
"""

from __future__ import annotations

import json
import sys

from card_choice import arguments, record, scores

from captioner.captioning.captioner import Captioner

BEAMS = (1, 2, 3, 4, 5, 6)
TOLERANCE = 0.2  # BLEU-4 and CIDEr-D points, as the speed issue allows


def main() -> int:
    args = arguments(__doc__)
    captioner = Captioner.load(args.bundle)

    def score(beam: int, split: str) -> dict:
        return scores(captioner, args.data_root, split, beam=beam)

    score(1, "dev-select")  # a first pass encodes the photos into the cache: untimed
    tried = {}
    for beam in BEAMS:
        tried[beam] = score(beam, "dev-select")
        print(f"beam {beam}: {tried[beam]}", flush=True)
    flickr = {beam: found["flickr"] for beam, found in tried.items()}
    best = max(flickr.values(), key=lambda s: (s["CIDEr-D"], s["BLEU-4"]))
    ties = [beam for beam, s in flickr.items()
            if all(best[k] - s[k] <= TOLERANCE for k in ("CIDEr-D", "BLEU-4"))]
    chosen = min(ties, key=lambda beam: flickr[beam]["seconds"])
    report = score(chosen, "dev-report")
    print(f"ties: {ties}; chosen: beam {chosen}\ndev-report: {json.dumps(report)}")
    if args.write:
        record(args.bundle, beam=chosen, beam_chosen_by=(
            f"python recipes/choose_beam.py: the fastest of the beams {list(BEAMS)} within {TOLERANCE} "
            "CIDEr-D and BLEU-4 of the best Flickr8k dev-select CIDEr-D, decoded as the default "
            "(guided, shortlisted)"),
            beam_tried={**{str(b): v for b, v in tried.items()}, "dev_report": {f"beam {chosen}": report}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
