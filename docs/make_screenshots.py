"""Make the README's screenshots of the two result pages, with the real commands and a real
headless Chromium: ``python docs/make_screenshots.py [--clip VIDEO]``.

Writes docs/gallery.png (``captioner caption --samples --attention-maps -o gallery.html``) and
docs/timeline.png (``captioner tag CLIP -o report.html``), as 256-colour PNGs to stay small.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parent
CLIP = DOCS.parent.parent / "shared/data/video_mini/kinetics/bungee jumping/dAeUFSdYG1I_000010_000020.mp4"
sys.path.insert(0, str(DOCS.parent / "tests"))  # the browser tests' way of finding Chromium

from browser import find_chromium


def shoot(page: Path, png: Path, width: int, height: int) -> None:
    """A screenshot of the top of ``page`` at this window size, stored as a palette PNG."""
    browser = find_chromium()
    if browser is None:
        sys.exit("no Chromium found: apt-get install chromium-headless-shell")
    raw = page.with_suffix(".png")
    subprocess.run([browser, "--headless", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
                    f"--window-size={width},{height}", f"--screenshot={raw}", page.as_uri()],
                   check=True, capture_output=True)
    Image.open(raw).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    print(f"{png}: {png.stat().st_size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="video for the timeline")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="captioner-shots-"))
    gallery, report = work / "gallery.html", work / "report.html"
    run = [sys.executable, "-m", "captioner"]
    subprocess.run([*run, "caption", "--samples", "--attention-maps", "-o", gallery], check=True)
    subprocess.run([*run, "tag", args.clip, "-o", report, "--clip-seconds", "2.5"], check=True)
    shoot(gallery, DOCS / "gallery.png", 1100, 760)
    shoot(report, DOCS / "timeline.png", 1000, 860)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
