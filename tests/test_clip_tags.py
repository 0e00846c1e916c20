"""The default clip tags (captioner.video.default_tags): the frames' tags pooled by one rule."""

import pytest

from captioner.video.default_tags import clip_tags


def frames(*found: dict[str, float], count: int) -> list[list[dict]]:
    """``count`` frames; the i-th holds the i-th dict's words (word: score), the rest none."""
    tags = [[{"tag": w, "score": s, "source": "concept"} for w, s in f.items()] for f in found]
    return tags + [[] for _ in range(count - len(found))]


def scores(tags: list[dict]) -> dict[str, float]:
    return {t["tag"]: t["score"] for t in tags}


def test_a_word_scores_its_mean_over_the_frames_absent_frames_counting_zero():
    seen = frames({"dog": 0.9, "ball": 0.8}, {"dog": 0.9}, {"dog": 0.6, "ball": 0.4}, {"dog": 0.6}, count=4)
    assert scores(clip_tags(seen, [])) == pytest.approx({"dog": 0.75, "ball": 0.3})
    once = frames({"kite": 0.9}, count=10)  # seen once by chance: a tenth of it
    assert scores(clip_tags(once, [])) == pytest.approx({"kite": 0.09})


def test_the_mean_of_the_best_frames_is_the_rule_s_other_setting():
    seen = frames({"dog": 0.9, "ball": 0.9}, {"dog": 0.9}, {"dog": 0.6, "ball": 0.3}, {"dog": 0.3}, count=10)
    assert scores(clip_tags(seen, [], top_frames=3)) == pytest.approx({"dog": 0.8, "ball": 0.4})
    short = frames({"kite": 0.9}, {"kite": 0.5}, count=2)  # fewer frames than three: all of them
    assert scores(clip_tags(short, [], top_frames=3)) == pytest.approx({"kite": 0.7})


def test_captions_raise_a_word_by_the_share_of_frames_naming_it():
    seen = frames({"dog": 0.5}, {"dog": 0.5}, {"dog": 0.5}, {"dog": 0.5}, count=4)
    half = ["a dog runs on the grass", "a dog jumps", "a man stands", "two men talk"]
    assert scores(clip_tags(seen, half)) == pytest.approx({"dog": 0.5 + 0.5 * 0.5 * 0.5})
    assert scores(clip_tags(seen, ["two dogs play"] * 4)) == pytest.approx({"dog": 0.75})
    assert scores(clip_tags(seen, ["a man stands"] * 4)) == pytest.approx({"dog": 0.5})


def test_a_caption_word_no_tagger_sees_is_never_a_tag():
    seen = frames({"piano": 0.7}, {"piano": 0.7}, count=2)
    tags = clip_tags(seen, ["a black dog is playing the piano"] * 2)
    assert [t["tag"] for t in tags] == ["piano"]


def test_filler_words_are_not_clip_tags_and_the_best_frame_gives_source_and_count():
    seen = [[{"tag": "shirt", "score": 0.9, "source": "concept"},
             {"tag": "air", "score": 0.8, "source": "concept"},
             {"tag": "standing", "score": 0.8, "source": "concept"},
             {"tag": "person", "score": 0.6, "source": "concept"}],
            [{"tag": "person", "score": 0.9, "source": "object", "count": 3}]]
    tags = clip_tags(seen, [], top_k=5)
    assert tags == [{"tag": "person", "score": 0.75, "source": "object", "count": 3}]  # (0.6 + 0.9) / 2


def test_ranking_is_best_first_and_top_k_cuts():
    seen = frames({"dog": 0.9, "cat": 0.5, "piano": 0.7}, count=1)
    assert [t["tag"] for t in clip_tags(seen, [], top_k=2)] == ["dog", "piano"]


def test_the_msvd_cat_clip_is_tagged_cat_and_piano_and_no_tag_is_filler():
    """On a real clip (a grey cat pawing piano keys), the default tagger end to end: the frames'
    tags hold filler words (postures, clothing...), the clip's tags do not."""
    from conftest import VIDEO, need

    from captioner import TagOptions, VideoTagger
    from captioner.data.filler import is_filler

    clip = need(VIDEO / "msvd" / "video" / "TZ860P4iTaM_15_28.avi")
    tagger = VideoTagger.default()
    options = TagOptions(clip_seconds=60, fps=1.0, top_k=20)
    frame_tags, _ = tagger.frame_results(tagger.video_features(clip, options).features)
    assert any(is_filler(t["tag"]) for tags in frame_tags for t in tags)
    (row,) = tagger.tag_video(clip, options)
    words = [t["tag"] for t in row["tags"]]
    assert {"cat", "piano"} <= set(words[:5]), words
    assert [w for w in words if is_filler(w)] == []
    assert all(0 < t["score"] <= 1 for t in row["tags"]) and row["caption"]
