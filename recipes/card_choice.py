"""What the recipes that re-choose one setting of the shipped decoding share: the bundle and
data arguments, and one set of scores on Flickr8k and coco_dev as `caption` decodes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from captioner.captioning.captioner import PRETRAINED  # noqa: E402
from captioner.evaluation.fluency import TrainingText  # noqa: E402
from captioner.files import atomic_write_text, json_text  # noqa: E402

SETS = {"flickr": ("flickr8k_mini/Flickr8k.token.txt", "flickr8k_mini/Images"),
        "coco": ("coco_dev/captions.token.txt", "coco_dev/Images")}
KEYS = ("BLEU-4", "CIDEr-D", "CHAIR-s")


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("bundle", type=Path, nargs="?", default=PRETRAINED,
                        help="the captioner bundle (default: the shipped one)")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the folder holding flickr8k_mini/ and coco_dev/")
    parser.add_argument("--write", action="store_true", help="record the choice in the card")
    return parser.parse_args()


def record(bundle: Path, drop: tuple[str, ...] = (), **decoding) -> None:
    """Write these fields into the bundle's card.json "decoding", without the ``drop`` ones
    that an earlier choice wrote (its model.keras is left as it is: a card field is no reason
    to store the weights again)."""
    card_path = Path(bundle) / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["decoding"] = {k: v for k, v in card["decoding"].items() if k not in drop} | decoding
    atomic_write_text(card_path, json_text(card))


def scores(captioner, data_root: Path, split: str, **options) -> dict:
    """Per data set, BLEU-4, CIDEr-D and CHAIR-s of ``split`` decoded with ``options`` (else
    the card's decoding), the images scored and the seconds it took."""
    found = {}
    for name in SETS:
        start = time.perf_counter()
        found[name] = score_set(captioner, data_root, name, split, **options)
        found[name]["seconds"] = round(time.perf_counter() - start, 1)
    return found


def score_set(captioner, data_root: Path, name: str, split: str, keys: tuple[str, ...] = KEYS,
              text: TrainingText | None = None, **options) -> dict:
    """``keys`` of one data set's ``split`` decoded with ``options``; with ``text``, also the
    share of its captions holding a trigram unseen there; then the images scored."""
    data, images = SETS[name]
    got = captioner.evaluate(data_root / data, data_root / images, split=split, progress=False,
                             per_image=text is not None, **options)
    found = {k: round(got[k], 2) for k in keys}
    if text is not None:
        captions = [row["caption"] for row in got["per_image"].values()]
        found["unseen trigrams"] = round(text.unseen_share(captions), 2)
    return found | {"images": got["images"]}
