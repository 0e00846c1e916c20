"""Download Flickr8k and lay it out as captioner reads it; offline, say so at once.

    python datasets/get_flickr8k.py [FOLDER]        (default: data/flickr8k)

Writes FOLDER/Images/*.jpg, FOLDER/Flickr8k.token.txt and the split lists
Flickr_8k.{train,dev,test}Images.txt, then: captioner train --data FOLDER/Flickr8k.token.txt
--images FOLDER/Images. The two zips (about 1 GB and 2 MB) come from a public mirror of the
University of Illinois release (Hodosh, Young & Hockenmaier 2013), which is for research use:
read its terms before you use the photos. A zip already downloaded is not fetched again; the
environment variable CAPTIONER_FLICKR8K_URL replaces the mirror's address (a folder URL, file://
works too).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

MIRROR = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k"
ZIPS = ("Flickr8k_text.zip", "Flickr8k_Dataset.zip")  # the small one first: offline fails fast
TIMEOUT = 15  # seconds without an answer before the download is given up
TEXT_FILES = ("Flickr8k.token.txt", "Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt",
              "Flickr_8k.testImages.txt")


def fetch(url: str, target: Path) -> None:
    """Download url to target through a .part file, so a broken download leaves no zip."""
    part = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as answer, part.open("wb") as out:
        total = int(answer.headers.get("Content-Length") or 0)
        done = 0
        while block := answer.read(1 << 20):
            out.write(block)
            done += len(block)
            if total:
                print(f"\r{target.name}: {done / 2**20:.0f} of {total / 2**20:.0f} MB", end="", flush=True)
    print()
    part.replace(target)


def unpack(folder: Path, downloads: Path) -> None:
    """The captions and split lists at the top of folder, the photos in folder/Images."""
    with zipfile.ZipFile(downloads / "Flickr8k_text.zip") as text:
        for member in text.namelist():
            if Path(member).name in TEXT_FILES:
                (folder / Path(member).name).write_bytes(text.read(member))
    images = folder / "Images"
    images.mkdir(exist_ok=True)
    with zipfile.ZipFile(downloads / "Flickr8k_Dataset.zip") as photos:
        for member in photos.namelist():
            name = Path(member).name
            if name.lower().endswith(".jpg") and "__MACOSX" not in member:
                with photos.open(member) as src, (images / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst)


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "data/flickr8k")
    mirror = os.environ.get("CAPTIONER_FLICKR8K_URL", MIRROR).rstrip("/")
    downloads = folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for name in ZIPS:
        target = downloads / name
        if target.is_file():
            continue
        try:
            fetch(f"{mirror}/{name}", target)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            print(f"get_flickr8k: cannot download {mirror}/{name} ({reason}). Without internet, "
                  f"copy {' and '.join(ZIPS)} into {downloads} from a machine that has it, "
                  "then run this again.", file=sys.stderr)
            return 1
    try:
        unpack(folder, downloads)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        print(f"get_flickr8k: cannot unpack the zips in {downloads} ({exc}); delete them and run "
              "this again.", file=sys.stderr)
        return 1
    count = sum(1 for _ in (folder / "Images").glob("*.jpg"))
    print(f"Flickr8k in {folder}: {count} photos. Next:\n  captioner train --data "
          f"{folder / 'Flickr8k.token.txt'} --images {folder / 'Images'} --out runs/mine")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
