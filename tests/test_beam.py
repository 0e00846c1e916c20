"""The Apache Beam pipeline (``python -m captioner.beam``) on the DirectRunner: the rows of
``captioner caption``, a bad file as an error row, never a failed pipeline."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FLICKR, need, write_photo

from captioner.data.images import EncodedImage
from captioner.data.paths import display_path
from captioner.encoders.features import item_name, read_batches

NOT_AN_IMAGE = "not an image file (or a format Pillow cannot read)"


def beam_main():
    pytest.importorskip("apache_beam", reason="Apache Beam is not installed: pip install -e '.[beam]'")
    from captioner.beam import main

    return main


@pytest.fixture
def fresh_features(monkeypatch, session_cache, tmp_path):
    """A feature cache of its own (the converted encoder shared). Beam's images are never cached,
    and spatial maps come back from the cache as float16, which may move a score's 4th decimal:
    the CLI's rows to compare with are those of its first run."""
    root = tmp_path / "cache"
    root.mkdir()
    (session_cache / "encoders").mkdir(exist_ok=True)
    (root / "encoders").symlink_to(session_cache / "encoders", target_is_directory=True)
    monkeypatch.setenv("CAPTIONER_CACHE", str(root))


@pytest.fixture(scope="module")
def captioner():
    from captioner import Captioner

    return Captioner.from_pretrained()


def broken_file(folder: Path) -> Path:
    path = folder / "broken.jpg"
    path.write_bytes(b"\xff\xd8 these bytes are no JPEG " * 20)
    return path


def run_pipeline(folder: Path, out: Path) -> list[dict]:
    """The command, in-process, over every .jpg of ``folder``; the rows of all its shards."""
    code = beam_main()(["--input", str(folder / "*.jpg"), "--output", str(out / "captions"),
                        "--runner", "DirectRunner"])
    assert code == 0
    shards = sorted(out.glob("captions-*-of-*.jsonl"))
    assert shards, f"no JSONL shards in {out}: {sorted(out.iterdir())}"
    return [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]


def by_image(rows: list[dict]) -> dict[str, dict]:
    return {row["image"]: row for row in rows}


def assert_same_rows(rows: list[dict], expected: list[dict]) -> None:
    """The pipeline's rows are the CLI's: the same images, captions, tag words and errors.
    Scores may differ by a rounding step: Beam hands the captioner its own batches, and a
    batch of one row is multiplied by other BLAS kernels than one of four (their sums differ
    around 1e-6, which can cross a rounding boundary at the 4th decimal)."""
    got, want = by_image(rows), by_image(expected)
    assert got.keys() == want.keys()
    for image, row in got.items():
        other = want[image]
        assert row.keys() == other.keys() and row.get("caption") == other.get("caption"), (row, other)
        assert row.get("error") == other.get("error")
        if "score" in row:
            assert row["score"] == pytest.approx(other["score"], abs=2e-4)
            assert [(t["tag"], t["source"]) for t in row["tags"]] == [(t["tag"], t["source"]) for t in other["tags"]]
            assert [t["score"] for t in row["tags"]] == pytest.approx([t["score"] for t in other["tags"]], abs=2e-4)


def test_encoded_images_decode_as_their_files_and_are_never_cached(tmp_path):
    photo = write_photo(tmp_path / "photo.jpg", size=(300, 200))
    broken = broken_file(tmp_path)
    items = [photo, EncodedImage("photo.jpg", photo.read_bytes()),
             EncodedImage(str(broken), broken.read_bytes())]
    errors, asked = {}, []
    batches = list(read_batches(items, 224, 8, errors, cached=lambda i, data: asked.append(i) or False))
    assert [b[0] for b in batches] == [[0, 1]]
    np.testing.assert_array_equal(batches[0][1][0], batches[0][1][1])
    assert asked == [0]  # the cache is asked about files only
    assert errors == {2: NOT_AN_IMAGE}  # the reason alone, as for a file
    assert item_name(items[1]) == "photo.jpg"


def test_a_file_that_cannot_be_read_is_an_error_row():
    beam_main()
    from apache_beam.pvalue import TaggedOutput

    from captioner.beam import UNREADABLE, ReadImage

    def refuse():
        raise OSError(errno.EACCES, "Permission denied")

    file = SimpleNamespace(metadata=SimpleNamespace(path="/photos/locked.jpg", size_in_bytes=10), read=refuse)
    (out,) = ReadImage().process(file)
    assert isinstance(out, TaggedOutput) and out.tag == UNREADABLE
    assert out.value == {"image": "/photos/locked.jpg", "error": "cannot read file (Permission denied)"}


def test_pipeline_gives_the_cli_rows_for_synthetic_photos(tmp_path, fresh_features, captioner):
    folder = tmp_path / "in"
    files = [write_photo(folder / f"p{seed}.jpg", seed=seed, size=(320, 240)) for seed in (11, 12)]
    files.append(broken_file(folder))
    rows = run_pipeline(folder, tmp_path / "out")
    assert_same_rows(rows, captioner.caption(files, progress=False))
    assert by_image(rows)[display_path(files[-1])] == {"image": display_path(files[-1]),
                                                       "error": NOT_AN_IMAGE}


@pytest.mark.slow
def test_pipeline_gives_the_cli_rows_for_real_photos(tmp_path, fresh_features, captioner):
    images = need(FLICKR / "Images")
    names = need(FLICKR / "Flickr_8k.devImages.txt").read_text().split()
    chosen = [n for n in names if (images / n).is_file()][:4]  # the first 4 dev photos held
    folder = tmp_path / "in"
    folder.mkdir()
    files = [shutil.copy(images / name, folder / name) for name in chosen]
    files = [Path(f) for f in files] + [broken_file(folder)]
    rows = run_pipeline(folder, tmp_path / "out")
    expected = captioner.caption(files, progress=False)
    assert len(rows) == 5
    assert_same_rows(rows, expected)
    assert sum("error" in row for row in rows) == 1


class _NamesOnly:
    """A stand-in captioner for pipeline tests that need no model: one row per image it gets."""

    def caption_items(self, items, beam=None, progress=False):
        return [{"image": item.name, "caption": "a test"} for item in items]


def test_a_folder_input_lists_the_images_the_cli_would(tmp_path, monkeypatch):
    """``--input folder/`` takes the folder's images as ``captioner caption folder`` does, not
    its notes or .DS_Store; a file named on its own is taken whatever its suffix."""
    main = beam_main()
    from captioner.beam import CaptionerModelHandler

    monkeypatch.setattr(CaptionerModelHandler, "load_model", lambda self: _NamesOnly())
    folder = tmp_path / "in"
    photos = [write_photo(folder / "a.jpg"), write_photo(folder / "b.PNG", fmt="PNG")]
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "deeper").mkdir()
    write_photo(folder / "deeper" / "c.jpg")
    out = tmp_path / "out"
    assert main(["--input", f"{folder}/", "--output", str(out / "captions")]) == 0
    rows = [json.loads(line) for shard in sorted(out.glob("captions-*.jsonl"))
            for line in shard.read_text().splitlines()]
    assert sorted(row["image"] for row in rows) == [display_path(p) for p in photos]
    assert main(["--input", str(folder / "notes.txt"), "--output", str(out / "notes")]) == 0
    assert [json.loads(line)["image"] for shard in out.glob("notes-*.jsonl")
            for line in shard.read_text().splitlines()] == [display_path(folder / "notes.txt")]


def test_a_folder_without_images_is_refused_before_the_job(tmp_path, capsys):
    main = beam_main()
    (tmp_path / "notes.txt").write_text("not a photo")
    assert main(["--input", f"{tmp_path}/", "--output", str(tmp_path / "captions")]) == 2
    assert "no image file matches" in capsys.readouterr().err


def test_the_beam_launcher_does_not_import_the_cli():
    """The launcher is a face of its own beside the CLI: it imports the library, not the CLI."""
    import subprocess
    import sys

    beam_main()
    probe = "import sys, captioner.beam; print('captioner.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_a_file_too_big_for_a_photo_is_an_error_row_and_is_never_read():
    beam_main()
    from apache_beam.pvalue import TaggedOutput

    from captioner.beam import UNREADABLE, ReadImage
    from captioner.data.images import MAX_FILE_BYTES

    def never():
        raise AssertionError("read whole")

    meta = SimpleNamespace(path="/photos/huge.png", size_in_bytes=MAX_FILE_BYTES + 1)
    (out,) = ReadImage().process(SimpleNamespace(metadata=meta, read=never))
    assert isinstance(out, TaggedOutput) and out.tag == UNREADABLE
    assert out.value["image"] == "/photos/huge.png" and out.value["error"].startswith("file too large")
