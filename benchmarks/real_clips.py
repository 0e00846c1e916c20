"""What the real-clip benchmarks share: their command line and their data.

``../shared/data/video_mini`` holds a few Kinetics clips (a folder per class) and six MSVD
clips with their human captions (``msvd/testing_label.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "video_mini"


def default_tagger(description: str):
    """The VideoTagger of ``--model`` (an image captioner bundle; default: the bundled one), or
    None, said, when the real clips are absent."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, help="image captioner bundle (default: the bundled one)")
    args = parser.parse_args()
    if not VIDEO.is_dir():
        print(f"skipped: {VIDEO} is absent (the real clips live in ../shared/data)")
        return None
    sys.path.insert(0, str(ROOT))
    from captioner import Captioner, VideoTagger

    return VideoTagger(Captioner.load(args.model)) if args.model else VideoTagger.default()


def msvd_captions() -> dict[str, list[str]]:
    """The MSVD clips' human captions, by file name."""
    entries = json.loads((VIDEO / "msvd" / "testing_label.json").read_text())
    return {e["id"]: e["caption"] for e in entries}
