"""Caption nouns (captioner.data.words) and the default clip tags built on them."""

import numpy as np

from captioner.data.words import caption_nouns
from captioner.encoders.imagenet import class_names
from captioner.video.default_tags import combine_clip_tags


def test_nouns_name_things_and_drop_what_says_nothing_about_the_content():
    assert caption_nouns("a little girl in a red shirt is standing in front of the water") == [
        "girl", "shirt", "water"]
    assert caption_nouns("two black dogs are playing with a ball on the grass") == ["dog", "ball", "grass"]
    # a word that can be a verb, right after a noun or "is", is one
    assert caption_nouns("a man wearing a helmet rides a motorcycle down the street") == [
        "man", "helmet", "motorcycle", "street"]
    assert caption_nouns("a large group of young people stand on top of a hill") == ["group", "people", "hill"]
    for colour in ("white", "orange", "pink", "brown", "grey"):
        assert caption_nouns(f"a {colour} car") == ["car"]


def test_clip_tags_join_basic_words_and_caption_nouns():
    names = class_names()
    probabilities = np.zeros((2, 1000))
    probabilities[:, names.index("tabby")] = 0.3
    probabilities[:, names.index("Egyptian cat")] = 0.3  # two cat classes: "cat" 0.6
    probabilities[0, names.index("golden retriever")] = 0.4
    tags = combine_clip_tags(probabilities, ["a little cat sits on a sofa", "a cat on a red sofa"], top_k=4)
    assert tags[0] == {"tag": "cat", "score": 1.0}  # named by both captions
    assert {"tag": "sofa", "score": 1.0} in tags and {"tag": "dog", "score": 0.2} in tags
    assert not {"little", "red", "sits"} & {t["tag"] for t in tags}
