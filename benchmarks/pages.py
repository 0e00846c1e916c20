"""Does a gallery of a thousand photos stay usable? Build time and size of the page (thumbnails
embedded, or photos linked), then, in headless Chromium, its load time, a filter keystroke, a
sort and the script heap.

    python benchmarks/pages.py [--photos 1000] [--data ../shared/data/flickr8k_mini]

The photos are the first of the official train and dev split lists that are present, captioned
by the bundled captioner; the page timings are medians of ``--repeats`` loads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the DevTools client the browser tests use

from browser import Chromium, find_chromium

from captioner import Captioner
from captioner.results.pages import write_page

MEASURE = """(async () => {
    const nav = performance.getEntriesByType('navigation')[0];
    const box = document.querySelector('.cp-filter'), sort = document.querySelector('.cp-sort');
    const time = action => { const t = performance.now(); action(); return performance.now() - t; };
    const filter = time(() => { box.value = 'dog'; box.dispatchEvent(new Event('input')); });
    const shown = document.querySelector('.cp-count').textContent;
    const clear = time(() => { box.value = ''; box.dispatchEvent(new Event('input')); });
    const sorted = time(() => { sort.value = 'best'; sort.dispatchEvent(new Event('change')); });
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    return {load: nav.loadEventEnd, filter, clear, sorted, shown,
            heap: performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null,
            images: document.images.length};
})()"""


def photos(data: Path, count: int) -> list[Path]:
    """The first ``count`` photos of the train and dev split lists that are in ``data/Images``."""
    names = []
    for split in ("Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt"):
        names += (data / split).read_text().split()
    found = [data / "Images" / n for n in names if (data / "Images" / n).exists()]
    if len(found) < count:
        sys.exit(f"only {len(found)} photos of the split lists are in {data / 'Images'}")
    return found[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/flickr8k_mini")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium: apt-get install chromium-headless-shell")
    files = photos(args.data, args.photos)
    rows = Captioner.from_pretrained().caption(files)
    work = Path(tempfile.mkdtemp(prefix="captioner-pages-"))
    browser = Chromium(chromium)
    print(f"{len(files)} photos; medians of {args.repeats} loads")
    print("| page | build (s) | size (MB) | load (ms) | filter 'dog' (ms) | clear (ms) | sort (ms) | JS heap (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for name, link in (("thumbnails embedded", False), ("photos linked", True)):
            page = work / f"{'linked' if link else 'embedded'}.html"
            start = time.perf_counter()
            write_page(page, rows, "images", link_images=link)
            build = time.perf_counter() - start
            runs = []
            for _ in range(args.repeats):
                tab = browser.open(page.as_uri())
                runs.append(tab.js(MEASURE))
                tab.send("Page.close")
            med = {k: statistics.median(r[k] for r in runs) for k in ("load", "filter", "clear", "sorted")}
            heap = statistics.median(r["heap"] for r in runs) if runs[0]["heap"] else float("nan")
            print(f"| {name} | {build:.1f} | {page.stat().st_size / 2**20:.1f} | {med['load']:.0f} | "
                  f"{med['filter']:.1f} ({runs[0]['shown']}) | {med['clear']:.1f} | "
                  f"{med['sorted']:.1f} | {heap:.1f} |")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
