"""Dev-split quality of a captioner beside the nearest-neighbour baselines, on the real photos.

    python benchmarks/caption_quality.py [--model BUNDLE] [--beams 1 3 5]

Train = the official train split plus the unsplit photos of ../shared/data/flickr8k_mini,
dev = its 115 dev photos; every score is BLEU-1..4 and CIDEr-D on a 0-100 scale, computed
by captioner.evaluation.captions (equal to pycocoevalcap). Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "flickr8k_mini"
KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle folder (default: the bundled captioner)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--length-penalty", type=float, help="default: the bundle's card")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    from captioner import Captioner
    from captioner.captioning.dataset import load_split, read_records
    from captioner.captioning.nearest import NearestCaptioner
    from captioner.evaluation.captions import evaluate_captions

    captioner = Captioner.load(args.model) if args.model else Captioner.from_pretrained()
    records = read_records(DATA / "Flickr8k.token.txt")
    train, _ = load_split(records, DATA / "Images", captioner.encoder, ("train", None), progress=False)
    dev, _ = load_split(records, DATA / "Images", captioner.encoder, ("dev",), progress=False)
    refs = dict(zip(dev.names, dev.captions))

    def score(captions: list[str]) -> dict:
        result = evaluate_captions(dict(zip(dev.names, captions)), refs)
        result["distinct"] = len(set(captions))
        return result

    rows = []
    baseline = NearestCaptioner(train.features, train.captions, k=30)
    rows.append(("nearest neighbour (closest photo's most central caption)", score(baseline.nearest(dev.features))))
    for similarity in ("cider", "bleu"):
        rows.append((f"consensus of 30 nearest (Devlin et al. 2015, {similarity})",
                     score(baseline.consensus(dev.features, similarity=similarity))))
    for beam in args.beams:
        caps = captioner.caption_features(dev.features, beam=beam, length_penalty=args.length_penalty)
        name = "greedy" if beam == 1 else f"beam {beam}"
        rows.append((f"captioner, {name}", score([c.text for c in caps])))
    print(f"{len(dev.names)} dev photos, {len(train.names)} training photos\n")
    print("| method | " + " | ".join(KEYS) + " | distinct captions |")
    print("|---|" + "---:|" * (len(KEYS) + 1))
    for name, result in rows:
        print(f"| {name} | " + " | ".join(f"{result[k]:.2f}" for k in KEYS) + f" | {result['distinct']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
