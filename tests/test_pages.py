"""The HTML of the result pages: escaping, thumbnails and keyframes that decode, links, the
caption track, and the resumable writing. The same pages in a real browser: test_pages_browser."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import pytest
from conftest import write_photo
from PIL import Image

from captioner.data.paths import display_path
from captioner.data.synthetic import shape_clip
from captioner.data.video import write_video
from captioner.errors import FormatError
from captioner.results import gallery_html, timeline_html
from captioner.results.cues import cue_text
from captioner.results.journal import ResultWriter
from captioner.results.pages import write_page
from captioner.results.writers import output_writer

HOSTILE = 'a "quoted" <script>alert(1)</script> & \'single\' caption'


class Page(HTMLParser):
    """The elements of a page: (tag, attributes, text inside up to the next tag)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[list] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append([tag, dict(attrs), ""])

    def handle_data(self, data):
        if self.elements:
            self.elements[-1][2] += data

    def find(self, tag: str, cls: str | None = None) -> list[list]:
        return [e for e in self.elements if e[0] == tag
                and (cls is None or cls in e[1].get("class", "").split())]

    def texts(self, tag: str, cls: str) -> list[str]:
        return [e[2].strip() for e in self.find(tag, cls)]


def _decode_data_uri(uri: str) -> Image.Image:
    head, data = uri.split(",", 1)
    assert head == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def _caption_words(page: Page, item_index: int) -> str:
    """The caption of the item-th gallery item, from its word spans."""
    items = [i for i, e in enumerate(page.elements) if "cp-item" in e[1].get("class", "")]
    end = items[item_index + 1] if item_index + 1 < len(items) else len(page.elements)
    return " ".join(e[2].strip() for e in page.elements[items[item_index]:end]
                    if "cp-word" in e[1].get("class", ""))


def test_gallery_escapes_captions_tags_and_names(tmp_path):
    rows = [
        {"image": str(tmp_path / 'no "such" <script>x.jpg'), "caption": HOSTILE, "score": -1.5,
         "tags": [{"tag": "<b>bold</b>", "score": 0.5}]},
        {"image": str(tmp_path / "gone.jpg"), "error": "not an image </p><script>alert(2)</script>"},
    ]
    text = gallery_html(rows)
    page = Page(text)
    assert len(page.find("script")) == 1  # the page's own script, nothing from the rows
    assert _caption_words(page, 0) == " ".join(HOSTILE.split())
    assert page.texts("span", "cp-tag") == ["<b>bold</b>"]
    assert page.texts("p", "cp-error-text") == ["not an image </p><script>alert(2)</script>"]
    names = page.find("p", "cp-name")
    assert [n[1]["title"] for n in names] == [r["image"] for r in rows]
    assert names[0][2] == 'no "such" <script>x.jpg'
    item = page.find("figure", "cp-item")[0]
    assert item[1]["data-text"] == " ".join(f"{HOSTILE} <b>bold</b> {names[0][2]}".lower().split())
    assert item[1]["data-score"] == "-1.5"
    # The photo does not exist: the item says so instead of failing the page.
    assert page.find("div", "cp-missing")[0][1]["title"].endswith("no such file")


def test_gallery_embeds_small_upright_thumbnails_and_links_non_utf8_names(tmp_path):
    tall = write_photo(tmp_path / "tall.png", size=(300, 900))
    wide = write_photo(tmp_path / "wide.jpg", size=(1000, 400), fmt="JPEG")
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9 'q\" <b>.png"))
    shutil.copy(tall, odd)
    turned = tmp_path / "turned.jpg"  # stored wide, EXIF says: turn it a quarter to stand tall
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(tall).transpose(Image.ROTATE_90).save(turned, exif=exif.tobytes())
    rows = [{"image": display_path(p), "caption": "a picture", "score": -1.0}
            for p in (tall, wide, odd, turned)]
    assert "\\xe9" in rows[2]["image"]  # the row holds the printable name, not the bytes

    page = Page(gallery_html(rows))
    thumbs = [_decode_data_uri(img[1]["src"]) for img in page.find("img")]
    assert [t.size for t in thumbs] == [(85, 256), (256, 102), (85, 256), (85, 256)]
    assert all(img[1]["loading"] == "lazy" for img in page.find("img"))
    original = np.asarray(Image.open(tall).resize((85, 256), Image.BICUBIC), dtype=float)
    assert np.abs(np.asarray(thumbs[0], dtype=float) - original).mean() < 12  # the same picture
    assert np.abs(np.asarray(thumbs[3], dtype=float) - original).mean() < 12  # turned upright

    out = tmp_path / "pages" / "gallery.html"
    write_page(out, rows, "images", link_images=True)
    linked = Page(out.read_text(encoding="utf-8"))
    sources = [img[1]["src"] for img in linked.find("img")]
    assert sources[:2] == ["../tall.png", "../wide.jpg"] and sources[3] == "../turned.jpg"
    assert unquote_to_bytes(sources[2]) == b"../caf\xe9 'q\" <b>.png"
    assert linked.texts("p", "cp-name")[2] == "caf\\xe9 'q\" <b>.png"


def test_attention_maps_ride_on_the_thumbnail(tmp_path):
    photo = write_photo(tmp_path / "p.png")
    weights = np.random.default_rng(0).dirichlet(np.ones(49), size=3).round(4).tolist()
    rows = [{"image": str(photo), "caption": "a red bus", "score": -1.0, "attention": weights},
            {"image": str(photo), "caption": "a dog", "score": -1.0, "attention": [[0.5, 0.5]] * 2}]
    page = Page(gallery_html(rows))
    items = page.find("figure", "cp-item")
    assert json.loads(items[0][1]["data-maps"]) == weights
    assert items[0][1]["data-grid"] == "7"
    assert page.find("canvas", "cp-map")[0][1]["width"] == "7"
    assert "data-maps" not in items[1][1]  # two regions: the grid's shape is unknown
    for broken in ([[float("nan")] * 49] * 3, [[0.02] * 49, [0.02] * 48]):  # NaN, ragged
        row = {"image": str(photo), "caption": "a red bus", "score": -1.0, "attention": broken}
        assert "data-maps" not in Page(gallery_html([row])).find("figure", "cp-item")[0][1]


def test_gallery_of_in_memory_pictures():
    pixels = np.zeros((300, 600, 3), np.uint8)
    pixels[:, :300] = (200, 30, 30)
    rows = [{"image": "<array 0>", "caption": "a red half", "score": -1.0},
            {"image": "<array 1>", "error": "too small"}]
    page = Page(gallery_html(rows, pictures=[Image.fromarray(pixels), None]))
    thumb = np.asarray(_decode_data_uri(page.find("img")[0][1]["src"]), dtype=float)
    assert thumb.shape == (128, 256, 3) and thumb[:, :100].mean(axis=(0, 1))[0] > 150
    with pytest.raises(ValueError, match="one per row"):
        gallery_html(rows, pictures=[pixels])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A 9-second video of three 3-second scenes: red, blue, green shapes."""
    frames = []
    for motion, shape, colour in (("moving right", "circle", "red"), ("growing", "square", "blue"),
                                  ("moving left", "circle", "green")):
        frames += shape_clip(motion, shape, colour, frames=24)
    return write_video(tmp_path_factory.mktemp("scenes") / "three scenes.mp4", frames, fps=8.0)


def _clip_rows(video: Path) -> list[dict]:
    return [{"video": str(video), "clip": i, "start": 3.0 * i, "end": 3.0 * i + 3,
             "caption": f"scene <{i}> & co", "tags": [{"tag": t, "score": s}]}
            for i, (t, s) in enumerate((("red", 0.9), ("blue", 0.4), ("green", 1.2)))]


def test_timeline_has_player_track_and_a_keyframe_per_clip(scenes, tmp_path):
    rows = _clip_rows(scenes)
    rows.append({"video": str(tmp_path / "broken.mp4"), "error": "cannot open <as> a video"})
    out = tmp_path / "report" / "timeline.html"
    write_page(out, rows, "videos")
    page = Page(out.read_text(encoding="utf-8"))

    video = page.find("video")[0]
    assert unquote_to_bytes(video[1]["src"]) == os.fsencode(os.path.relpath(scenes, out.parent))
    track = page.find("track")[0][1]
    assert track["default"] is None and track["kind"] == "captions"
    head, data = track["src"].split(",", 1)
    assert head == "data:text/vtt;base64"
    assert base64.b64decode(data).decode("utf-8") == cue_text(rows[:3])

    clips = page.find("li", "cp-clip")
    assert [(c[1]["data-start"], c[1]["data-end"]) for c in clips] == [("0", "3"), ("3", "6"), ("6", "9")]
    assert page.texts("p", "cp-caption") == [r["caption"] for r in rows[:3]]
    assert page.texts("p", "cp-time") == ["0:00.0 – 0:03.0", "0:03.0 – 0:06.0", "0:06.0 – 0:09.0"]
    # Scores as bars: the width is the score, held between 0 and 1.
    widths = [e[1]["style"] for e in page.elements if e[0] == "span" and e[1].get("style")]
    assert widths == ["width: 90%", "width: 40%", "width: 100%"]
    # Each keyframe is a frame from the middle of its clip: the scene's colour dominates.
    for keyframe, colour in zip(page.find("img"), (0, 2, 1)):
        pixels = np.asarray(_decode_data_uri(keyframe[1]["src"]), dtype=float).reshape(-1, 3)
        shape = pixels[pixels.std(axis=1) > 40]  # the coloured shape, not the grey background
        assert shape.mean(axis=0).argmax() == colour
    assert page.texts("p", "cp-error-text") == ["cannot open <as> a video"]


def test_timeline_groups_each_video_once_and_escapes_its_name(scenes, tmp_path):
    hostile = Path(os.fsdecode(os.fsencode(tmp_path) + b"/a \"b\" #1?%25 <x>&\xe9'.mp4"))
    shutil.copy(scenes, hostile)
    rows = _clip_rows(scenes)
    other = [dict(row, video=display_path(hostile)) for row in _clip_rows(scenes)[:2]]
    page = Page(timeline_html([rows[0], other[0], rows[1], other[1], rows[2]], tmp_path))
    titles = [h[1]["title"] for h in page.find("h2")]
    assert titles == [str(scenes), display_path(hostile)]
    assert len(page.find("section")) == 2 and len(page.find("li", "cp-clip")) == 5
    sources = [unquote_to_bytes(v[1]["src"]) for v in page.find("video")]
    assert sources[1] == os.fsencode(hostile.name)  # relative to tmp_path, every byte kept


def test_clip_times_read_as_clocks_and_seek_to_the_millisecond():
    rows = [{"video": "gone.mp4", "clip": 0, "start": 59.96, "end": 1234.563, "caption": "x", "tags": []},
            {"video": "gone.mp4", "clip": 1, "start": 3599.96, "end": 10000.25, "caption": "y", "tags": []}]
    page = Page(timeline_html(rows))
    assert page.texts("p", "cp-time") == ["1:00.0 – 20:34.6", "1:00:00.0 – 2:46:40.2"]
    assert [(c[1]["data-start"], c[1]["data-end"]) for c in page.find("li", "cp-clip")] == [
        ("59.96", "1234.563"), ("3599.96", "10000.25")]
    assert page.find("h1")[0][2].startswith("captioner timeline: 1 video, 2 clips")


def test_pages_fetch_nothing(scenes, tmp_path):
    photo = write_photo(tmp_path / "p.png")
    for text in (gallery_html([{"image": str(photo), "caption": "a", "score": 0.0}]),
                 timeline_html(_clip_rows(scenes))):
        page = Page(text)
        links = [v for e in page.elements for k, v in e[1].items() if k in ("src", "href")]
        assert links and all(v.startswith("data:") or "://" not in v for v in links)
        assert "http" not in text.replace("http-equiv", "")


def test_html_output_is_resumable_and_keeps_its_journal(tmp_path):
    photos = [write_photo(tmp_path / f"p{i}.png", seed=i) for i in range(3)]
    out = tmp_path / "gallery.html"
    with ResultWriter(out, "image", "images") as writer:
        writer.add([{"image": str(photos[0]), "caption": "first", "score": -1.0}])
    with ResultWriter(out, "image", "images") as writer:
        assert writer.done(photos[0]) and not writer.done(photos[1])
        writer.add([{"image": str(photos[1]), "caption": "second", "score": -2.0},
                    {"image": str(tmp_path / "bad.jpg"), "error": "broken"}])
    page = Page(out.read_text(encoding="utf-8"))
    assert [_caption_words(page, i) for i in range(2)] == ["first", "second"]
    assert page.texts("p", "cp-error-text") == ["broken"]
    assert (tmp_path / ".gallery.html.journal.jsonl").exists()  # a page cannot be read back


def test_html_suffix_writes_the_page_of_each_kind(scenes, tmp_path):
    output_writer(tmp_path / "a.html", "images")(tmp_path / "a.html", [{"image": "x.jpg", "error": "e"}])
    output_writer(tmp_path / "b.HTML", "videos")(tmp_path / "b.HTML", _clip_rows(scenes))
    assert Page((tmp_path / "a.html").read_text()).find("div", "cp-gallery")
    assert len(Page((tmp_path / "b.HTML").read_text()).find("li", "cp-clip")) == 3
    with pytest.raises(FormatError, match="no page"):
        write_page(tmp_path / "c.html", [], "clips")
    (tmp_path / "mine.html").write_text("<p>a page someone wrote</p>")
    with pytest.raises(FormatError, match="no journal beside it"):
        ResultWriter(tmp_path / "mine.html", "image", "images")


def test_the_detectors_boxes_are_drawn_over_the_photo_in_its_own_pixels(tmp_path, sample_photos):
    """caption --objects rows: each box an SVG rect over the thumbnail, in a frame as large as
    the upright photo, so it lands where the detector found the thing (the sample cat)."""
    from captioner import Captioner

    chelsea = next(p for p in sample_photos if p.name.startswith("chelsea"))
    out = tmp_path / "gallery.html"
    (row,) = Captioner.from_pretrained().caption([chelsea], objects=True, output=out, progress=False)
    cat = next(o for o in row["objects"] if o["label"] == "cat")
    page = Page(out.read_text(encoding="utf-8"))
    (svg,) = page.find("svg", "cp-boxes")
    assert svg[1]["viewbox"] == "0 0 451 300"  # chelsea.png is 451 x 300
    rects = page.find("rect")
    assert len(rects) == len(row["objects"])
    x0, y0, x1, y1 = cat["box"]
    drawn = [tuple(float(r[1][k]) for k in ("x", "y", "width", "height")) for r in rects]
    assert any(np.allclose(d, (x0, y0, x1 - x0, y1 - y0), atol=0.05) for d in drawn), (drawn, cat)
    turned = tmp_path / "turned.jpg"  # EXIF-turned photos: the frame is the upright one
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20)).save(turned, exif=exif.tobytes())
    boxed = {"image": str(turned), "caption": "x", "score": -1.0,
             "objects": [{"label": "cat", "score": 0.5, "box": [1, 2, 3, 4]}]}
    assert Page(gallery_html([boxed])).find("svg", "cp-boxes")[0][1]["viewbox"] == "0 0 20 40"
