"""Words only the text holds: their output rows after paired training, kept or borrowed."""

import numpy as np
import pytest

from captioner.captioning.decoder import CaptionDecoder
from captioner.captioning.text_words import language_model_of, revive

WORDS = 8  # ids 0-3 are the special tokens; 4-6 are paired words, 7 is a text-only word


def _decoder():
    return CaptionDecoder(WORDS, 6, embed_dim=4, units=5).build_for()


@pytest.fixture
def pair(tmp_path):
    lm = _decoder()
    path = tmp_path / "lm.weights.h5"
    lm.save_weights(path)
    trained = _decoder()  # other random weights: as paired training would leave them
    return trained, language_model_of(trained, path), lm


def test_keep_takes_the_language_models_row_and_moves_its_bias_with_the_paired_words(pair):
    trained, language_model, lm = pair
    kernel, bias = (np.array(w) for w in trained.logits.get_weights())
    lm_kernel, lm_bias = (np.array(w) for w in lm.logits.get_weights())
    assert revive(trained, language_model, [7], "keep") == {}
    new_kernel, new_bias = (np.array(w) for w in trained.logits.get_weights())
    assert np.allclose(new_kernel[:, 7], lm_kernel[:, 7])
    assert new_bias[7] == pytest.approx(lm_bias[7] + np.mean(bias[4:7] - lm_bias[4:7]), abs=1e-6)
    assert np.allclose(new_kernel[:, :7], kernel[:, :7]) and np.allclose(new_bias[:7], bias[:7])


def test_borrow_copies_the_nearest_paired_word_by_the_language_models_embedding(pair):
    trained, language_model, _ = pair
    table = np.array(language_model.embedding.get_weights()[0])
    table[7] = 2.0 * table[5] + 1e-3  # "zebra" is used as "horse" is
    language_model.embedding.set_weights([table])
    kernel, bias = (np.array(w) for w in trained.logits.get_weights())
    lm_bias = np.array(language_model.logits.get_weights()[1])
    assert revive(trained, language_model, [7], "borrow") == {7: 5}
    new_kernel, new_bias = (np.array(w) for w in trained.logits.get_weights())
    assert np.allclose(new_kernel[:, 7], kernel[:, 5])
    assert new_bias[7] == pytest.approx(bias[5] + lm_bias[7] - lm_bias[5], abs=1e-6)


def test_paired_leaves_the_rows_and_an_unknown_method_is_refused(pair):
    trained, language_model, _ = pair
    before = [np.array(w) for w in trained.logits.get_weights()]
    assert revive(trained, language_model, [7], "paired") == {}
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, trained.logits.get_weights()))
    with pytest.raises(ValueError, match="method"):
        revive(trained, language_model, [7], "magic")


def test_a_text_only_word_comes_out_for_a_photo_of_its_object():
    """The shipped captioner learnt "zebras", "clock" and "sink" from COCO's text alone (no
    Flickr8k training caption has them); on COCO photos whose captions agree on the thing, it
    says the word. (Not "giraffe" yet: no tagger knows one, and the caption never says it.)"""
    from conftest import FLICKR, SHARED_DATA, need

    from captioner import Captioner
    from captioner.captioning.dataset import read_records
    from captioner.captioning.train import text_only_words
    from captioner.data.caption_sets import group_by_image, in_splits
    from captioner.data.text import tokenize

    coco = need(SHARED_DATA / "coco_dev")
    need(FLICKR)
    captioner = Captioner.from_pretrained()
    records = read_records(FLICKR / "Flickr8k.token.txt")
    paired = group_by_image(r for r in records if in_splits(r, ("train", None)))
    ids = text_only_words(captioner.vocab, list(paired.values()))
    text_only = {captioner.vocab.id_to_word[i] for i in ids}
    photos_of = group_by_image(read_records(coco / "captions.token.txt"))
    said = {}
    for word in ("zebra", "clock", "sink"):
        forms = {word, word + "s"} & text_only
        assert forms, f"{word}: a Flickr8k training caption has it"
        photos = [coco / "Images" / name for name, caps in photos_of.items()
                  if sum(bool({word, word + "s"} & set(tokenize(c))) for c in caps) >= 4]
        assert len(photos) >= 2, f"coco_dev should hold photos of {word}s"
        rows = captioner.caption(photos, progress=False)
        said[word] = [r["caption"] for r in rows if forms & set(r["caption"].split())]
    assert all(said.values()), said
