"""Quality of captioners on the dev-report half of Flickr8k dev, beside nearest-neighbour baselines.

    python benchmarks/caption_quality.py [NAME=BUNDLE ...]

Train = the official train split plus the unsplit photos of ../shared/data/flickr8k_mini;
dev-report = the half of its dev photos that no choice has seen (training stops and decoding
is chosen on the other half, dev-select). Each captioner is scored greedy and with the
decoding its card chose; every score is BLEU-1..4 and CIDEr-D on a 0-100 scale, computed by
captioner.evaluation.captions (equal to pycocoevalcap). Prints a Markdown table for the README.
Without arguments: the bundled captioner.
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
    parser.add_argument("models", nargs="*", metavar="NAME=BUNDLE",
                        help="captioners to score; BUNDLE may be A+B for an ensemble")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    from captioner import Captioner
    from captioner.captioning.dataset import load_split, read_records
    from captioner.captioning.nearest import NearestCaptioner
    from captioner.evaluation.captions import evaluate_captions

    models = {}
    for spec in args.models or ["bundled=" + str(ROOT / "captioner" / "pretrained" / "flickr8k_lite0")]:
        name, _, folders = spec.partition("=")
        members = [Captioner.load(Path(f)) for f in folders.split("+")]
        models[name] = members[0] if len(members) == 1 else Captioner.ensemble(members)
    first = next(iter(models.values()))
    records = read_records(DATA / "Flickr8k.token.txt")

    def split(names, kind):
        return load_split(records, DATA / "Images", first.encoder, names, progress=False, kind=kind)[0]

    train, report = split(("train", None), "pooled"), split(("dev-report",), "pooled")
    refs = dict(zip(report.names, report.captions))

    def score(captions: list[str]) -> dict:
        result = evaluate_captions(dict(zip(report.names, captions)), refs)
        result["distinct"] = len(set(captions))
        return result

    rows = []
    baseline = NearestCaptioner(train.features, train.captions, k=30)
    rows.append(("nearest neighbour (closest photo's most central caption)",
                 score(baseline.nearest(report.features))))
    for similarity in ("cider", "bleu"):
        rows.append((f"consensus of 30 nearest (Devlin et al. 2015, {similarity})",
                     score(baseline.consensus(report.features, similarity=similarity))))
    spatial = None
    for name, captioner in models.items():
        if captioner.feature_kind == "spatial" and spatial is None:
            spatial = split(("dev-report",), "spatial")
        features = spatial.features if captioner.feature_kind == "spatial" else report.features
        chosen = captioner.decoding()
        card_label = f"beam {chosen['beam']}, length penalty {chosen['length_penalty']:g} (card)"
        for label, beam in (("greedy", 1), (card_label, None)):
            caps = captioner.caption_features(features, beam=beam)
            rows.append((f"{name}, {label}", score([c.text for c in caps])))
    print(f"{len(report.names)} dev-report photos, {len(train.names)} training photos\n")
    print("| method | " + " | ".join(KEYS) + " | distinct captions |")
    print("|---|" + "---:|" * (len(KEYS) + 1))
    for name, result in rows:
        print(f"| {name} | " + " | ".join(f"{result[k]:.2f}" for k in KEYS) + f" | {result['distinct']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
