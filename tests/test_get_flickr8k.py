"""datasets/get_flickr8k.py: the layout captioner reads, from the mirror's zips; offline, one
clear line at once."""

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from conftest import write_photo

SCRIPT = Path(__file__).resolve().parents[1] / "datasets" / "get_flickr8k.py"


def run(folder: Path, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAPTIONER_FLICKR8K_URL": url}
    return subprocess.run([sys.executable, str(SCRIPT), str(folder)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_zips_unpack_to_a_data_set_captioner_reads(tmp_path):
    from captioner.captioning.dataset import read_records

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    photos = [write_photo(tmp_path / f"{n}.jpg", seed=i, fmt="JPEG") for i, n in enumerate("ab")]
    with zipfile.ZipFile(mirror / "Flickr8k_Dataset.zip", "w") as z:
        for photo in photos:
            z.write(photo, f"Flicker8k_Dataset/{photo.name}")
        z.writestr("__MACOSX/Flicker8k_Dataset/._a.jpg", b"resource fork")
    with zipfile.ZipFile(mirror / "Flickr8k_text.zip", "w") as z:
        z.writestr("Flickr8k.token.txt", "".join(f"{n}.jpg#{k}\ta dog runs {k}\n" for n in "ab" for k in range(5)))
        z.writestr("Flickr_8k.trainImages.txt", "a.jpg\n")
        z.writestr("Flickr_8k.devImages.txt", "b.jpg\n")
        z.writestr("Flickr_8k.testImages.txt", "")
        z.writestr("readme.txt", "not needed")
    out = tmp_path / "flickr8k"
    done = run(out, mirror.as_uri())
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (out / "Images").iterdir()) == ["a.jpg", "b.jpg"]
    records = read_records(out / "Flickr8k.token.txt")
    assert {(r.image, r.split) for r in records} == {("a.jpg", "train"), ("b.jpg", "dev")}
    assert "captioner train --data" in done.stdout
    again = run(out, (tmp_path / "gone").as_uri())  # the zips are there: nothing is fetched
    assert again.returncode == 0, again.stderr


def test_without_the_internet_it_says_so_at_once_and_leaves_no_partial_zip(tmp_path):
    started = time.monotonic()
    done = run(tmp_path / "flickr8k", "http://127.0.0.1:9/flickr8k")
    assert done.returncode == 1 and time.monotonic() - started < 60
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("get_flickr8k: cannot download http://127.0.0.1:9/flickr8k/Flickr8k_text.zip")
    assert "Without internet" in line
    assert list((tmp_path / "flickr8k" / "downloads").iterdir()) == []
