"""Exports (captioner.serving): the SavedModel in a process without captioner, the TFLite files
through captioner's searches and through the README's plain-interpreter example."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from captioner.cli import main

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k_mini"


@pytest.fixture(scope="module")
def bundled():
    from captioner import Captioner

    return Captioner.from_pretrained()


@pytest.fixture(scope="module")
def photos(sample_photos):
    """The sample photos, plus 40 real dev photos where ../shared is present."""
    extra = []
    if (FLICKR / "Flickr_8k.devImages.txt").is_file():
        names = (FLICKR / "Flickr_8k.devImages.txt").read_text().split()
        extra = [p for p in (FLICKR / "Images" / n for n in names) if p.is_file()][:40]
    return [*sample_photos, *extra]


SERVE = (
    "import json, sys\n"
    "import tensorflow as tf\n"
    "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
    "files = sys.argv[2:]\n"
    "out = serve(images=tf.constant([open(f, 'rb').read() for f in files]))\n"
    "assert out['scores'].dtype == tf.float32 and out['captions'].shape == (len(files),)\n"
    "assert out['tags'].shape == out['tag_scores'].shape == (len(files), 5)\n"
    "text = lambda t: [x.decode() for x in t.numpy().ravel()]\n"
    "number = lambda t: [None if x != x else x for x in t.numpy().ravel().tolist()]\n"
    "print(json.dumps({'captions': text(out['captions']), 'errors': text(out['errors']),\n"
    "                  'scores': number(out['scores']),\n"
    "                  'tags': [text(row) for row in out['tags']],\n"
    "                  'tag_scores': [number(row) for row in out['tag_scores']],\n"
    "                  'tag_sources': [text(row) for row in out['tag_sources']],\n"
    "                  'captioner_loaded': any(m.startswith('captioner') for m in sys.modules)}))\n"
)


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory, bundled):
    out = tmp_path_factory.mktemp("export") / "savedmodel"
    assert main(["export", "--format", "savedmodel", str(out)]) == 0
    return out


def serve(savedmodel: Path, files: list[Path], where: Path) -> dict:
    """The SavedModel's answer to one request of these files, in a process without captioner."""
    done = subprocess.run([sys.executable, "-c", SERVE, str(savedmodel), *map(str, files)], cwd=where,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_savedmodel_captions_and_tags_like_caption_in_a_process_without_captioner(
        tmp_path, savedmodel, bundled, photos):
    """The default's guidance is in the graph: the merged tags, the confident ones named, the
    objects without evidence held back (the card's thresholds). The graph's encoder reads its
    own resize of the pixels, so scores agree to a rounding step, not bit for bit."""
    served = serve(savedmodel, photos, tmp_path)
    assert not served["captioner_loaded"] and served["errors"] == [""] * len(photos)
    assert bundled.guidance()["guided"], "the card guides: the test would not see the guidance"
    rows = bundled.caption_items(photos, progress=False)
    assert served["captions"] == [row["caption"] for row in rows]
    assert served["scores"] == pytest.approx([row["score"] for row in rows], abs=0.01)
    for i, row in enumerate(rows):
        tags = {t["tag"]: t for t in row["tags"]}
        # Ranks may swap between near-equal scores; the words above the fifth do not move.
        assert len(set(served["tags"][i]) & set(tags)) >= 4, (served["tags"][i], row["tags"])
        for word, score, source in zip(served["tags"][i], served["tag_scores"][i], served["tag_sources"][i]):
            if word in tags:
                assert score == pytest.approx(tags[word]["score"], abs=0.02)
                assert source == tags[word]["source"]
    free = bundled.caption_items(photos, progress=False, guided=False)
    assert sum(row["caption"] != f["caption"] for row, f in zip(rows, free)) >= 5, \
        "the guidance should change some of these captions, else this test does not see it"


def test_the_graph_guidance_and_search_equal_the_python_path_on_the_same_features(bundled, photos):
    """On the very same features (no encoder difference): the graph's tags, constraints and
    held-back words, and its constrained beam search, give caption_tagged's captions; an image
    whose constraints cannot be met in time gets its free caption, as in Python."""
    import tensorflow as tf

    from captioner.captioning.search import beam_search, shortlist
    from captioner.encoders.features import as_regions, extract_features
    from captioner.serving.graph_guidance import GraphGuidance
    from captioner.serving.graph_search import beam_search_graph, ids_to_text

    result = extract_features(photos, bundled.encoder, ("spatial", "probabilities"), progress=False)
    maps, probabilities = as_regions(result.features["spatial"]), result.features["probabilities"]
    tags = bundled.tags_of(result.features)
    guide, settings = bundled.guidance(), bundled.decoding()
    penalty = bundled.card["decoding"]["hold_penalty"]
    frequent = bundled.card["decoding"]["shortlist"]
    graph = GraphGuidance(bundled.tagger, bundled.vocab, guide["guide_threshold"], guide["hold_threshold"], penalty)
    scores, from_concept = graph.scores(tf.constant(probabilities), tf.constant(maps))
    words, values, sources = graph.top(scores, from_concept, 5)
    for row, got, value, source in zip(tags, words.numpy(), values.numpy(), sources.numpy()):
        assert [w.decode() for w in got] == [t["tag"] for t in row[:5]]
        assert value == pytest.approx([t["score"] for t in row[:5]], abs=2e-4)
        assert [s.decode() for s in source] == [t["source"] for t in row[:5]]
    guides = graph.guides(scores)
    vocab_words = tf.constant(list(bundled.vocab.id_to_word))

    def captions(max_length):
        ids, _, _ = beam_search_graph(bundled.decoder, tf.constant(maps), settings["beam"], max_length,
                                      settings["length_penalty"], frequent, guides)
        return [t.decode() for t in ids_to_text(ids, vocab_words).numpy()]

    expected = bundled.caption_tagged(maps, tags)
    assert captions(20) == [c.text for c in expected]
    assert sum(bool(guides[0].numpy()[i].any()) for i in range(len(photos))) >= 5  # constrained
    # Two words of two constraints cannot both be written in one word: every image gets the
    # free caption of one word, the Python search's fallback.
    wanted, held = bundled._guides(tags)
    two = [i for i, w in enumerate(wanted) if len(w) == 2]
    assert two, "no image with two constraints among these photos"
    short = captions(1)
    step = bundled.step().shortlisted(shortlist(frequent, wanted))
    from captioner.captioning.guided import penalty_rows

    python = beam_search(step, bundled.vocab, maps, settings["beam"], 1, settings["length_penalty"],
                         penalties=penalty_rows(held, len(bundled.vocab), penalty), image_constraints=wanted)
    assert short == [c.text for c in python]
    assert all(len(short[i].split()) == 1 for i in two)


def test_the_savedmodel_refuses_bad_images_one_by_one_and_composites_alpha_on_white(
        tmp_path, savedmodel, bundled, sample_photos):
    """A request holding a decompression bomb, a file that is no image and two whose data is
    damaged past a valid header: those rows get an error, the others their captions; a
    transparent PNG is read on white, as caption reads it."""
    import struct

    from PIL import Image

    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 180, np.linspace(0, 255, 160).astype(np.uint8)[None, :]
    rgba[40:80, 60:100] = (20, 160, 40, 255)
    clear = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(clear)
    bomb = tmp_path / "bomb.png"  # a header claiming 100,000 x 100,000 pixels, nothing after
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                     + struct.pack(">II", 100_000, 100_000) + b"\x08\x02\x00\x00\x00")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    # Valid headers, then bytes no decoder can read: found only by decoding.
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    Image.fromarray(rgba[..., :3]).save(tmp_path / "whole.jpg")
    garbled = tmp_path / "garbled.jpg"
    garbled.write_bytes((tmp_path / "whole.jpg").read_bytes()[:300] + noise)
    zeroed = tmp_path / "zeroed.png"
    zeroed.write_bytes(clear.read_bytes()[:60] + bytes(4000))
    files = [sample_photos[0], bomb, clear, text, garbled, zeroed]
    served = serve(savedmodel, files, tmp_path)
    assert served["errors"][0] == served["errors"][2] == ""
    assert served["errors"][1].startswith("too many pixels (100000 x 100000")
    assert served["errors"][3] == "not an image (JPEG, PNG, GIF or BMP)"
    assert served["errors"][4] == served["errors"][5] == "the image's data is damaged: it cannot be decoded"
    assert served["captions"][1] == served["captions"][3] == "" and served["scores"][1] is None
    assert served["captions"][4] == served["captions"][5] == "" and served["scores"][5] is None
    rows = bundled.caption_items([sample_photos[0], clear], progress=False)
    assert [served["captions"][0], served["captions"][2]] == [row["caption"] for row in rows]
    assert served["tags"][1] == [""] * 5 and served["tag_scores"][1] == [None] * 5


@pytest.fixture(scope="module")
def tflite_folder(tmp_path_factory, bundled):
    from captioner import export

    return export(bundled, tmp_path_factory.mktemp("tflite") / "lite", format="tflite")


def test_the_tflite_files_give_the_python_captions(tflite_folder, bundled, sample_photos):
    from captioner.captioning.search import beam_search, shortlist
    from captioner.encoders.features import as_regions, extract_features
    from captioner.encoders.tflite_runner import TFLiteRunner
    from captioner.serving.tflite import TFLiteDecoder

    assert sorted(p.name for p in tflite_folder.iterdir()) == [
        "decoder.tflite", "decoding.json", "encoder.tflite", "vocab.json"]
    settings = json.loads((tflite_folder / "decoding.json").read_text())
    result = extract_features(sample_photos, bundled.encoder, kinds=("spatial",), progress=False)
    features = as_regions(result.features["spatial"])
    exported = TFLiteRunner(tflite_folder / "encoder.tflite")
    pixels = np.stack([np.asarray(_pixels(p), np.float32) for p in sample_photos])
    np.testing.assert_allclose(as_regions(exported(pixels, ("spatial",))["spatial"]), features,
                               rtol=1e-3, atol=1e-3)  # cached maps are float16
    decoder = TFLiteDecoder(tflite_folder / "decoder.tflite")
    if settings["shortlist"]:  # the card's, as caption decodes
        decoder = decoder.shortlisted(shortlist(settings["shortlist"]))
    captions = beam_search(decoder, bundled.vocab, features,
                           settings["beam"], settings["max_length"], settings["length_penalty"])
    expected = bundled.caption_features(features)
    assert [c.text for c in captions] == [c.text for c in expected]
    assert [c.score for c in captions] == pytest.approx([c.score for c in expected], abs=1e-4)


def test_the_readme_tflite_example_writes_the_greedy_caption(tflite_folder, bundled, sample_photos,
                                                            tmp_path):
    readme = (ROOT / "docs" / "export-and-scale.md").read_text()
    example = re.search(r"<!-- tflite-example -->\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    (tmp_path / "caption_tflite.py").write_text(example)
    photo = next(p for p in sample_photos if p.name == "chelsea.png")  # no resize shortcut
    done = subprocess.run([sys.executable, "caption_tflite.py", str(tflite_folder), str(photo)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True)
    greedy = bundled.caption_items([photo], beam=1, progress=False, guided=False)[0]["caption"]
    assert done.stdout.strip().splitlines()[-1] == greedy


def test_export_refuses_a_folder_that_holds_something(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert main(["export", "--format", "tflite", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def _pixels(path):
    from captioner.data.images import load_image, resize

    return resize(load_image(path, size=224), 224)
