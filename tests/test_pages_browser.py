"""The result pages in a real browser (headless Chromium, which .ci/run installs): written by
the real commands, opened offline, checked from the DOM as a user would use them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import Chromium, find_chromium
from test_cli import run_cli

from captioner.data.paths import display_path
from captioner.data.synthetic import shape_clip
from captioner.data.video import write_video
from captioner.results.pages import write_page
from captioner.results.writers import read_jsonl

ALL_DECODED = """Promise.all([...document.images].map(img => {
    img.loading = 'eager';  // the thumbnails load lazily; the test wants every one now
    return img.decode().then(() => img.naturalWidth, () => 0);
}))"""
VISIBLE = "[...document.querySelectorAll('.cp-item')].filter(e => !e.hidden)"
FETCHED = "performance.getEntriesByType('resource').map(e => e.name)"


@pytest.fixture(scope="module")
def chromium():
    executable = find_chromium()
    if executable is None:
        pytest.skip("no headless Chromium on this machine: .ci/run installs chromium-headless-shell "
                    "with apt when it can; or set CAPTIONER_CHROMIUM to a Chromium binary")
    browser = Chromium(executable)
    yield browser
    browser.close()


def _journal_rows(page: Path) -> list[dict]:
    """The rows a page was rendered from: its journal, which a page keeps (it cannot be read back)."""
    return [row for unit in read_jsonl(page.with_name(f".{page.name}.journal.jsonl")) for row in unit]


def _starts_a_word(term: str, row: dict) -> bool:
    words = [*str(row.get("caption", "")).split(), *(t["tag"] for t in row.get("tags", [])),
             Path(row.get("image") or row["video"]).name, *str(row.get("error", "")).split()]
    return any(w.lower().startswith(term) for text in words for w in text.split())


def test_gallery_of_the_sample_photos(chromium, sample_photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a photo")
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9 \"q\" <b>.png"))  # not UTF-8
    shutil.copy(sample_photos[0], odd)
    page = tmp_path / "out" / "gallery.html"
    run_cli("caption", "--samples", broken, odd, "--attention-maps", "-o", page)
    rows = _journal_rows(page)
    assert len(rows) == len(sample_photos) + 2

    tab = chromium.open(page.as_uri())
    widths = tab.js(ALL_DECODED)
    assert len(widths) == len(rows) - 1 and all(w > 0 for w in widths)  # all but the broken file
    shown = tab.js("""[...document.querySelectorAll('.cp-item')].map(item => ({
        caption: [...item.querySelectorAll('.cp-word')].map(w => w.textContent).join(' '),
        tags: [...item.querySelectorAll('.cp-tag')].map(t => t.textContent),
        name: item.querySelector('.cp-name').title,
        error: (item.querySelector('.cp-error-text') || {}).textContent}))""")
    for row, item in zip(rows, shown):
        assert item["name"] == row["image"]
        if "error" in row:
            assert item["error"] == row["error"]
        else:
            assert item["caption"] == row["caption"]
            assert item["tags"] == [t["tag"] for t in row["tags"]]
    assert any("cat" in r.get("caption", "").split() or r.get("tags", [{}])[0].get("tag") == "cat"
               for r in rows)

    tab.type(".cp-filter", "cat")
    names = tab.js(f"{VISIBLE}.map(e => e.querySelector('.cp-name').title)")
    assert names == [r["image"] for r in rows if _starts_a_word("cat", r)] and 0 < len(names) < len(rows)
    assert tab.js("document.querySelector('.cp-count').textContent") == f"{len(names)} of {len(rows)} shown"
    tab.type(".cp-filter", "no-such-word")
    assert tab.js(f"{VISIBLE}.length") == 0
    tab.type(".cp-filter", "")
    assert tab.js(f"{VISIBLE}.length") == len(rows)

    tab.js("(s => { s.value = 'best'; s.dispatchEvent(new Event('change')); })(document.querySelector('.cp-sort'))")
    order = tab.js("[...document.querySelectorAll('.cp-item')].map(e => e.querySelector('.cp-name').title)")
    by_score = sorted((r for r in rows if "score" in r), key=lambda r: -r["score"])
    assert order == [r["image"] for r in by_score] + [broken.as_posix()]

    # A word of a caption lights the photo where it looked: the map is drawn, and uneven.
    assert tab.js("document.querySelector('.cp-map.cp-on')") is None
    tab.hover(".cp-item[data-maps] .cp-word:nth-child(2)")
    alphas = tab.js("""(c => [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data]
                       .filter((v, i) => i % 4 === 3))(document.querySelector('.cp-map.cp-on'))""")
    assert len(alphas) == 49 and min(alphas) == 0 and max(alphas) > 100
    assert all(url.startswith(("file:", "data:")) for url in tab.js(FETCHED))


def test_linked_gallery_opens_every_photo(chromium, sample_photos, tmp_path):
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/photos/caf\xe9 #1?.png"))
    odd.parent.mkdir()
    shutil.copy(sample_photos[1], odd)
    rows = [{"image": display_path(p), "caption": "a photo", "score": -1.0}
            for p in [*sample_photos, odd]]
    page = tmp_path / "pages" / "linked.html"
    write_page(page, rows, "images", link_images=True)
    tab = chromium.open(page.as_uri())
    sources = tab.js("[...document.images].map(img => img.getAttribute('src'))")
    assert all(not s.startswith("data:") for s in sources)
    assert all(w > 0 for w in tab.js(ALL_DECODED)) and len(sources) == len(rows)


def _write_h264(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """An H.264 MP4 (Chromium cannot play OpenCV's mp4v), written with PyAV's own FFmpeg."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_timeline_of_a_video(chromium, tmp_path):
    frames = []
    for motion, shape, colour in (("moving right", "circle", "red"), ("growing", "square", "blue"),
                                  ("moving left", "circle", "green")):
        frames += [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in shape_clip(motion, shape, colour, frames=24)]
    (tmp_path / "clips").mkdir()
    movie = _write_h264(tmp_path / "clips" / "three scenes.mp4", frames, fps=8)
    broken = tmp_path / "clips" / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a movie")
    old_codec = write_video(tmp_path / "clips" / "mp4v.mp4", frames[:24], fps=8.0)  # OpenCV's
    page = tmp_path / "report.html"
    run_cli("tag", movie, broken, old_codec, "-o", page, "--clip-seconds", "3")
    rows = sorted((r for r in _journal_rows(page) if r["video"] == str(movie)), key=lambda r: r["start"])
    assert [r["start"] for r in rows] == [0.0, 3.0, 6.0]

    tab = chromium.open(page.as_uri())
    # Chromium plays the H.264 file; it cannot play mp4v, and the page says so under that one.
    tab.wait_for("document.querySelector('video').readyState >= 1")
    tab.wait_for("document.querySelectorAll('video')[1].error !== null")
    assert tab.js("[...document.querySelectorAll('.cp-unplayable')].map(e => e.hidden)") == [True, False]
    assert tab.js("document.querySelector('video').duration") == pytest.approx(9.0, abs=0.2)
    tab.wait_for("document.querySelector('track').readyState === 2")  # the captions track loaded
    cues = tab.js("[...document.querySelector('video').textTracks[0].cues].map(c => [c.startTime, c.text])")
    assert [c[0] for c in cues] == [0.0, 3.0, 6.0]
    assert [c[1].splitlines()[0] for c in cues] == [r["caption"] for r in rows]
    assert all(w > 0 for w in tab.js(ALL_DECODED)) and len(tab.js("[...document.images]")) == 4
    clips = tab.js("""[...document.querySelectorAll('.cp-video')[0].querySelectorAll('.cp-clip')].map(c => ({
        caption: c.querySelector('.cp-caption').textContent,
        tags: [...c.querySelectorAll('.cp-tag')].map(t => t.textContent)}))""")
    assert clips == [{"caption": r["caption"], "tags": [t["tag"] for t in r["tags"]]} for r in rows]
    error_row = next(r for r in _journal_rows(page) if "error" in r)
    assert tab.js("document.querySelector('.cp-error .cp-error-text').textContent") == error_row["error"]

    tab.click(".cp-clip:nth-child(2)")
    tab.wait_for("document.querySelector('video').currentTime === 3")
    tab.wait_for("document.querySelector('.cp-clip:nth-child(2)').classList.contains('cp-now')")
    tag = rows[2]["tags"][0]["tag"]
    tab.type(".cp-filter", tag)
    visible = tab.js("[...document.querySelectorAll('.cp-video')[0].querySelectorAll('.cp-clip')]"
                     ".filter(e => !e.hidden).map(e => e.getAttribute('data-start'))")
    assert visible == [f"{r['start']:g}" for r in rows if _starts_a_word(tag.lower(), r)]
    assert tab.js("document.querySelector('.cp-error').hidden") is (not _starts_a_word(tag.lower(), error_row))
    assert all(url.startswith(("file:", "data:")) for url in tab.js(FETCHED))
