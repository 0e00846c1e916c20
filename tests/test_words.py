"""Caption nouns (captioner.data.words)."""

from captioner.data.words import caption_nouns


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
