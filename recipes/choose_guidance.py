"""The guidance of the shipped default decoding, chosen on the dev-select halves: the tag score
that makes a word a constraint, and the evidence under which object words are held back, with
their penalty.

    python recipes/choose_guidance.py [BUNDLE] [--data-root ../shared/data] [--write]

Every setting of the grid is scored on coco_dev dev-select at the card's decoding (beam,
length penalty, shortlist). Holding words back hard meets the hallucination targets but costs
the captions their grammar ("a black and white is jumping on a bed"), which CIDEr-D and CHAIR
do not see; the share of captions holding a trigram that no training caption holds
(captioner.evaluation.fluency) does. So the rule: among the settings whose unseen-trigram share
is no higher than with nothing held back at their guide threshold (holding back must not add
such captions) and whose CIDEr-D is within 2 of the best setting's, the lowest CHAIR-s (then
the higher CIDEr-D) whose Flickr8k dev-select CIDEr-D stays within 1 of free captions'. The
chosen setting and the card's previous one are then scored on the dev-report halves, which no
choice has seen. ``--write`` records it in the bundle's card.json only (its model.keras is
left as it is). ``recipes/choose_everyday.py`` makes the same choice after training.
"""

from __future__ import annotations

import functools
import itertools
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from card_choice import SETS, arguments, record, score_set

from captioner.captioning.captioner import Captioner
from captioner.captioning.dataset import read_records
from captioner.data.caption_sets import in_splits
from captioner.evaluation.fluency import TrainingText

GUIDE = (0.5, 0.7, 0.9)
HOLD = (None, 0.1, 0.2, 0.3, 0.4, 0.5)
PENALTY = (2.0, 4.0, 8.0)
KEYS = ("BLEU-4", "CIDEr-D", "CHAIR-s", "invented dog", "named")
RULE = ("lowest coco_dev dev-select CHAIR-s among the settings adding no caption with a trigram "
        "unseen in the training text over nothing held back at their guide threshold, within 2 "
        "CIDEr-D of the best setting there and within 1 CIDEr-D of free captions on Flickr8k "
        "dev-select")


def training_text(data_root: Path) -> TrainingText:
    """The text the bundled captioner's language was learned from: the Flickr8k captions of
    every photo but the dev ones, and the COCO caption text."""
    records = read_records(data_root / SETS["flickr"][0])
    coco = read_records(data_root / "coco_captions" / "captions_text.json")
    return TrainingText([r.caption for r in records if in_splits(r, ("train", None))]
                        + [r.caption for r in coco])


def scorer(captioner: Captioner, data_root: Path, text: TrainingText) -> Callable[..., dict]:
    """``score(name, split, **guidance)``: KEYS and the unseen-trigram share of one data set."""
    return functools.partial(score_set, captioner, data_root, keys=KEYS, text=text)


def choose(captioner: Captioner, score: Callable[..., dict]) -> tuple[dict | None, list[dict], dict]:
    """The chosen setting (None: free captions), every setting tried, and free captions' scores."""
    decoding = captioner.card.setdefault("decoding", {})
    free = {name: score(name, "dev-select", guided=False) for name in ("coco", "flickr")}
    print("free", free, flush=True)
    settings = []
    for guide, hold, penalty in itertools.product(GUIDE, HOLD, PENALTY):
        if hold is None and penalty != PENALTY[0]:
            continue
        decoding["hold_penalty"] = penalty
        found = score("coco", "dev-select", guided=True, guide_threshold=guide, hold_threshold=hold)
        settings.append({"guide_threshold": guide, "hold_threshold": hold, "hold_penalty": penalty, "coco": found})
        print(settings[-1], flush=True)
    unheld = {s["guide_threshold"]: s["coco"]["unseen trigrams"] for s in settings if s["hold_threshold"] is None}
    fluent = [s for s in settings if s["coco"]["unseen trigrams"] <= unheld[s["guide_threshold"]]]
    best_cider = max(s["coco"]["CIDEr-D"] for s in settings)
    near = sorted((s for s in fluent if s["coco"]["CIDEr-D"] >= best_cider - 2.0),
                  key=lambda s: (s["coco"]["CHAIR-s"], -s["coco"]["CIDEr-D"]))
    for setting in near:  # the Flickr8k check is the slow one: run it on the finalists only
        decoding["hold_penalty"] = setting["hold_penalty"]
        setting["flickr"] = score("flickr", "dev-select", guided=True, guide_threshold=setting["guide_threshold"],
                                  hold_threshold=setting["hold_threshold"])
        print("flickr check", setting, flush=True)
        if setting["flickr"]["CIDEr-D"] >= free["flickr"]["CIDEr-D"] - 1.0:
            return setting, settings, free
    return None, settings, free


def main() -> int:
    args = arguments(__doc__)
    captioner = Captioner.load(args.bundle)
    before = {k: captioner.card["decoding"].get(k) for k in
              ("guided", "guide_threshold", "hold_threshold", "hold_penalty")}
    score = scorer(captioner, args.data_root, training_text(args.data_root))
    choice, settings, free = choose(captioner, score)
    chosen = ({"guided": False, "hold_threshold": None} if choice is None else
              {"guided": True} | {k: choice[k] for k in ("guide_threshold", "hold_threshold", "hold_penalty")})
    report = {}
    for name, setting in (("before", before), ("chosen", chosen)):
        captioner.card["decoding"]["hold_penalty"] = setting.get("hold_penalty") or before["hold_penalty"]
        guidance = {k: setting[k] for k in ("guided", "guide_threshold", "hold_threshold") if k in setting}
        report[name] = setting | {s: score(s, "dev-report", **guidance) for s in ("flickr", "coco")}
    print(f"chosen: {chosen}\ndev-report: {json.dumps(report)}")
    if args.write:
        command = shlex.join(["python", "recipes/choose_guidance.py", *sys.argv[1:]])
        record(args.bundle, **chosen, guided_chosen_by=f"{command}: {RULE}",
               guidance_tried={"free": free, "settings": settings, "dev_report": report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
