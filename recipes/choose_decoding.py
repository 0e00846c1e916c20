"""The beam and length penalty of the shipped default decoding, chosen on dev-select together,
with speed as the tie-break.

    python recipes/choose_decoding.py [BUNDLE] [--data-root ../shared/data] [--write]

The bundle's beam and length penalty were first chosen on free captions of Flickr8k, when it
was trained. The default now guides the captions by the tags (a constraint makes a caption
longer, and dividing by length ** penalty favours long ones), cuts the output layer to a
shortlist, and serves everyday photos as well as Flickr8k's. So every beam of BEAMS with every
penalty of PENALTIES is scored as `caption` decodes by default (the card's guidance) on
Flickr8k and coco_dev dev-select, and timed there (features cached). The output layer's
shortlist is a speed approximation chosen after this one, to stay within 0.2 of the whole
vocabulary at the chosen decoding (choose_shortlist.py), so the whole vocabulary is scored
here: with the shortlist in, each choice moved the other's. A setting's
score is the mean of the two sets' CIDEr-D (then BLEU-4): each kind of photo counts the same,
whatever its number of photos. Every setting within TOLERANCE of the best in both means ties
with it, and the fastest tie is chosen. The chosen setting and the card's previous one are
then scored on the dev-report halves, which no choice has seen. ``--write`` records it in the
bundle's card.json only (its model.keras is left as it is).
"""

from __future__ import annotations

import itertools
import json
import sys

from card_choice import arguments, record, scores

from captioner.captioning.captioner import Captioner

BEAMS = (1, 2, 3, 4, 5, 6)
PENALTIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2)
TOLERANCE = 0.2  # BLEU-4 and CIDEr-D points, as the speed issue allows


def main() -> int:
    args = arguments(__doc__)
    captioner = Captioner.load(args.bundle)
    card = captioner.decoding()
    before = (card["beam"], card["length_penalty"])
    captioner.card["decoding"].pop("shortlist", None)  # the whole vocabulary (see above)

    def score(beam: int, penalty: float, split: str) -> dict:
        captioner.card["decoding"]["length_penalty"] = penalty  # evaluate reads it from the card
        return scores(captioner, args.data_root, split, beam=beam)

    def mean(found: dict, key: str) -> float:
        return round((found["flickr"][key] + found["coco"][key]) / 2, 2)

    score(1, 1.0, "dev-select")  # a first pass encodes the photos into the cache: untimed
    tried = {}
    for beam, penalty in itertools.product(BEAMS, PENALTIES):
        found = tried[beam, penalty] = score(beam, penalty, "dev-select")
        print(f"beam {beam}, length penalty {penalty}: mean CIDEr-D {mean(found, 'CIDEr-D')}, "
              f"BLEU-4 {mean(found, 'BLEU-4')}; {json.dumps(found)}", flush=True)
    best = max(tried.values(), key=lambda s: (mean(s, "CIDEr-D"), mean(s, "BLEU-4")))
    ties = [key for key, s in tried.items()
            if all(mean(best, k) - mean(s, k) <= TOLERANCE for k in ("CIDEr-D", "BLEU-4"))]
    chosen = min(ties, key=lambda key: tried[key]["flickr"]["seconds"] + tried[key]["coco"]["seconds"])
    report = {f"beam {b}, length penalty {p}": score(b, p, "dev-report") for b, p in dict.fromkeys((before, chosen))}
    print(f"ties: {ties}; chosen: beam {chosen[0]}, length penalty {chosen[1]} (was {before})\n"
          f"dev-report: {json.dumps(report)}")
    if args.write:
        record(args.bundle, drop=("beam_tried", "beam_chosen_by"), beam=chosen[0], length_penalty=chosen[1],
               decoding_chosen_by=(
                   f"python recipes/choose_decoding.py: the fastest of the beams {list(BEAMS)} with the "
                   f"length penalties {list(PENALTIES)} within {TOLERANCE} of the best mean of Flickr8k "
                   "and coco_dev dev-select CIDEr-D and BLEU-4, decoded as the default (guided) over "
                   f"the whole vocabulary; it was beam {before[0]}, length penalty {before[1]}"),
               decoding_tried={**{f"beam {b}, length penalty {p}": v for (b, p), v in tried.items()},
                               "dev_report": report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
