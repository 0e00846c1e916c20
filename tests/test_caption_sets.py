"""Tests for the caption file readers of captioner.data.caption_sets, on small files of each format."""

import json
import logging
from pathlib import Path

import pytest

from captioner.data.caption_sets import (
    CaptionRecord,
    find_flickr_splits,
    group_by_image,
    read_captions,
    read_captions_csv,
    read_coco,
    read_flickr_tokens,
    read_karpathy,
)
from captioner.errors import FormatError

FLICKR = (
    "1000268201_693b08cb0e.jpg#0\tA child in a pink dress is climbing up a set of stairs .\n"
    "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n"
    "this line has no caption key\n"
    "\n"
    "2258277193_586949ec62.jpg.1#0\tpeople waiting for the subway\n"
    "1001773457_577c3a7d70.jpg#0\t\n"
    "1001773457_577c3a7d70.jpg#1\tA black dog and a spotted dog are fighting\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_flickr_tokens_records_quirk_and_problems(tmp_path, caplog) -> None:
    path = _write(tmp_path / "Flickr8k.token.txt", FLICKR)
    with caplog.at_level(logging.WARNING, logger="captioner.data.caption_sets"):
        result = read_flickr_tokens(path)
    assert result.records == [
        CaptionRecord(
            "1000268201_693b08cb0e.jpg",
            "A child in a pink dress is climbing up a set of stairs .",
            None,
        ),
        CaptionRecord("1000268201_693b08cb0e.jpg", "A girl going into a wooden building .", None),
        CaptionRecord("2258277193_586949ec62.jpg", "people waiting for the subway", None),
        CaptionRecord(
            "1001773457_577c3a7d70.jpg", "A black dog and a spotted dog are fighting", None
        ),
    ]
    assert len(result.problems) == 2
    assert result.problems[0].startswith(f"{path}:3: ")
    assert result.problems[1] == f"{path}:6: empty caption"
    # one summarised warning for the file, not one per line
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 problem" in warnings[0].getMessage()


def test_flickr30k_style_names(tmp_path) -> None:
    path = _write(
        tmp_path / "results_20130124.token", "1000092795.jpg#0\tTwo young guys with shaggy hair .\n"
    )
    assert read_captions(path).records == [
        CaptionRecord("1000092795.jpg", "Two young guys with shaggy hair .", None)
    ]


def test_flickr_splits_from_lists(tmp_path) -> None:
    token = _write(tmp_path / "Flickr8k.token.txt", FLICKR)
    _write(
        tmp_path / "Flickr_8k.trainImages.txt",
        "1000268201_693b08cb0e.jpg\n2258277193_586949ec62.jpg\n",
    )
    _write(tmp_path / "Flickr_8k.devImages.txt", "1001773457_577c3a7d70.jpg\n\n")
    splits = find_flickr_splits(token)
    assert splits == {
        "train": tmp_path / "Flickr_8k.trainImages.txt",
        "dev": tmp_path / "Flickr_8k.devImages.txt",
    }
    by_image = {r.image: r.split for r in read_flickr_tokens(token, splits)}
    assert by_image == {
        "1000268201_693b08cb0e.jpg": "train",
        "2258277193_586949ec62.jpg": "train",
        "1001773457_577c3a7d70.jpg": "dev",
    }
    # read_captions finds the lists by itself
    assert {r.image: r.split for r in read_captions(token)} == by_image


def test_flickr_image_in_two_split_lists_is_a_problem(tmp_path) -> None:
    token = _write(tmp_path / "t.txt", "a.jpg#0\ta dog\n")
    train = _write(tmp_path / "train.txt", "a.jpg\n")
    dev = _write(tmp_path / "dev.txt", "a.jpg\n")
    result = read_flickr_tokens(token, {"train": train, "dev": dev})
    assert result.records == [CaptionRecord("a.jpg", "a dog", "train")]
    assert result.problems == [f"{dev}:1: a.jpg is also in split 'train'"]


def test_flickr_missing_split_list_raises(tmp_path) -> None:
    token = _write(tmp_path / "t.txt", "a.jpg#0\ta dog\n")
    with pytest.raises(FormatError, match="nope.txt"):
        read_flickr_tokens(token, {"train": tmp_path / "nope.txt"})


def test_csv_with_commas_quotes_split_and_bad_rows(tmp_path) -> None:
    path = _write(
        tmp_path / "captions.csv",
        "\ufeffimage,caption,split\n"
        'a.jpg,"A dog, wet, shakes off",train\n'
        'b.jpg,"She said ""hi"" to him",val\n'
        'c.jpg,"a caption over\ntwo lines",test\n'
        "d.jpg,,train\n"
        "e.jpg,too,many,fields\n"
        "f.jpg,a cat,holiday\n",
    )
    result = read_captions_csv(path)
    assert result.records == [
        CaptionRecord("a.jpg", "A dog, wet, shakes off", "train"),
        CaptionRecord("b.jpg", 'She said "hi" to him', "dev"),
        CaptionRecord("c.jpg", "a caption over\ntwo lines", "test"),
        CaptionRecord("f.jpg", "a cat", None),
    ]
    assert [p.split(": ")[0] for p in result.problems] == [f"{path}:6", f"{path}:7", f"{path}:8"]
    assert "empty caption" in result.problems[0] and "unknown split" in result.problems[2]


def test_kaggle_captions_txt_with_unquoted_commas(tmp_path) -> None:
    path = _write(
        tmp_path / "captions.txt",
        "image,caption\n"
        "1000268201_693b08cb0e.jpg,A child in a pink dress is climbing up a set of stairs .\n"
        "1001773457_577c3a7d70.jpg,A black dog and a tri-colored dog on the road , outside .\n",
    )
    result = read_captions(path)
    assert result.problems == []
    assert result.records[1].caption == "A black dog and a tri-colored dog on the road , outside ."


def test_csv_without_header_raises(tmp_path) -> None:
    path = _write(tmp_path / "x.csv", "a.jpg,a dog\n")
    with pytest.raises(FormatError, match="header"):
        read_captions_csv(path)
    with pytest.raises(FormatError, match="x.csv"):
        read_captions(path)


def _coco(tmp_path: Path) -> Path:
    data = {
        "info": {},
        "images": [
            {"id": 1, "file_name": "COCO_val2014_000000000001.jpg"},
            {"id": 2, "file_name": "COCO_val2014_000000000002.jpg", "split": "val"},
            {"id": 3},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A man riding a bike. "},
            {"id": 11, "image_id": 2, "caption": "Two cats on a sofa"},
            {"id": 12, "image_id": 1, "caption": "Someone cycling down a street"},
            {"id": 13, "image_id": 99, "caption": "orphan"},
            {"id": 14, "image_id": 2, "caption": ""},
        ],
    }
    return _write(tmp_path / "captions_val2014.json", json.dumps(data))


def test_coco(tmp_path) -> None:
    path = _coco(tmp_path)
    result = read_coco(path)
    assert result.records == [
        CaptionRecord("COCO_val2014_000000000001.jpg", "A man riding a bike.", None),
        CaptionRecord("COCO_val2014_000000000002.jpg", "Two cats on a sofa", "dev"),
        CaptionRecord("COCO_val2014_000000000001.jpg", "Someone cycling down a street", None),
    ]
    assert [p.split(": ")[0] for p in result.problems] == [
        f"{path}:images[2]",
        f"{path}:annotations[3]",
        f"{path}:annotations[4]",
    ]
    assert group_by_image(result) == {
        "COCO_val2014_000000000001.jpg": ["A man riding a bike.", "Someone cycling down a street"],
        "COCO_val2014_000000000002.jpg": ["Two cats on a sofa"],
    }


def _karpathy(tmp_path: Path) -> Path:
    data = {
        "dataset": "coco",
        "images": [
            {
                "filepath": "val2014",
                "filename": "COCO_val2014_1.jpg",
                "split": "restval",
                "sentences": [
                    {"raw": "A man on a bike.", "tokens": ["a", "man", "on", "a", "bike"]}
                ],
            },
            {
                "filename": "2.jpg",
                "split": "val",
                "sentences": [{"tokens": ["two", "cats"]}, {"raw": ""}, "junk"],
            },
            {"filename": "3.jpg", "split": "test", "sentences": [{"raw": "a bird"}]},
            {"filename": "4.jpg", "split": "train", "sentences": [{"raw": "a fish"}]},
            {"split": "train", "sentences": []},
        ],
    }
    return _write(tmp_path / "dataset_coco.json", json.dumps(data))


def test_karpathy_split_mapping_and_problems(tmp_path) -> None:
    path = _karpathy(tmp_path)
    result = read_karpathy(path)
    assert result.records == [
        CaptionRecord("val2014/COCO_val2014_1.jpg", "A man on a bike.", "train"),
        CaptionRecord("2.jpg", "two cats", "dev"),
        CaptionRecord("3.jpg", "a bird", "test"),
        CaptionRecord("4.jpg", "a fish", "train"),
    ]
    assert [p.split(": ")[0] for p in result.problems] == [
        f"{path}:images[1].sentences[1]",
        f"{path}:images[1].sentences[2]",
        f"{path}:images[4]",
    ]


def test_image_names_that_leave_the_image_folder_are_problems_in_every_format(tmp_path) -> None:
    """A caption file names images inside the folder given with it: an absolute name or one
    with '..' would read any file on the machine, so its entry is skipped as a problem."""
    outside = "/etc/secret.jpg"
    files = {
        "flickr": _write(tmp_path / "tokens.txt", f"../secret.jpg#0\ta cat\n{outside}#0\ta cat\n"
                                                  "ok.jpg#0\ta dog\n"),
        "csv": _write(tmp_path / "c.csv", f"image,caption\n../secret.jpg,a cat\n{outside},a cat\n"
                                          "sub/ok.jpg,a dog\n"),
        "coco": _write(tmp_path / "coco.json", json.dumps({
            "images": [{"id": 1, "file_name": "../secret.jpg"}, {"id": 2, "file_name": outside},
                       {"id": 3, "file_name": "ok.jpg"}],
            "annotations": [{"image_id": i, "caption": "a thing"} for i in (1, 1, 2, 3)]})),
        "karpathy": _write(tmp_path / "k.json", json.dumps({"images": [
            {"filepath": "..", "filename": "secret.jpg", "sentences": [{"raw": "a cat"}]},
            {"filename": outside, "sentences": [{"raw": "a cat"}]},
            {"filepath": "val2014", "filename": "ok.jpg", "sentences": [{"raw": "a dog"}]}]})),
    }
    for fmt, path in files.items():
        result = read_captions(path, fmt)
        assert [r.image for r in result] in (["ok.jpg"], ["sub/ok.jpg"], ["val2014/ok.jpg"]), fmt
        assert len(result.problems) == 2, (fmt, result.problems)  # one per image, not per caption
        for problem, name in zip(result.problems, ("../secret.jpg", outside)):
            assert problem.startswith(f"{path}:") and "outside the image folder" in problem, problem
            assert repr(name) in problem, problem


def test_read_captions_detects_each_format(tmp_path) -> None:
    flickr = _write(tmp_path / "Flickr8k.token.txt", FLICKR)
    csv_txt = _write(tmp_path / "captions.txt", "image,caption\na.jpg,a dog\n")
    coco, karpathy = _coco(tmp_path), _karpathy(tmp_path)
    assert read_captions(flickr).records == read_flickr_tokens(flickr).records
    assert read_captions(csv_txt).records == [CaptionRecord("a.jpg", "a dog", None)]
    assert read_captions(coco).records == read_coco(coco).records
    assert read_captions(karpathy).records == read_karpathy(karpathy).records
    # an explicit format wins over the extension
    assert (
        read_captions(_write(tmp_path / "data.dat", "a.jpg#0\ta cat\n"), fmt="flickr")
        .records[0]
        .caption
        == "a cat"
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", "just some prose\nwith no captions\n"),
        ("other.json", '{"images": [{"id": 1}]}'),
        ("list.json", "[1, 2, 3]"),
        ("empty.txt", ""),
    ],
)
def test_read_captions_unknown_format_lists_supported(tmp_path, name: str, content: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(FormatError, match="supported: flickr, csv, coco, karpathy") as err:
        read_captions(path)
    assert name in str(err.value)


def test_unknown_fmt_name(tmp_path) -> None:
    with pytest.raises(FormatError, match="unknown caption format 'yaml'"):
        read_captions(tmp_path / "x.yaml", fmt="yaml")


def test_broken_json_raises(tmp_path) -> None:
    path = _write(tmp_path / "bad.json", '{"images": [')
    with pytest.raises(FormatError, match="bad.json:1: not valid JSON"):
        read_captions(path)
    with pytest.raises(FormatError, match="'images' and 'annotations'"):
        read_coco(_write(tmp_path / "c.json", '{"images": []}'))


@pytest.mark.parametrize(
    "reader", [read_flickr_tokens, read_captions_csv, read_coco, read_karpathy, read_captions]
)
def test_missing_file_raises_format_error(tmp_path, reader) -> None:
    with pytest.raises(FormatError, match="absent.txt: file not found"):
        reader(tmp_path / "absent.txt")


def test_folder_instead_of_file(tmp_path) -> None:
    with pytest.raises(FormatError, match="is a folder"):
        read_flickr_tokens(tmp_path)


def test_real_flickr8k_token_file() -> None:
    token = (
        Path(__file__).parents[1]
        / ".."
        / "shared"
        / "data"
        / "flickr8k_mini"
        / "Flickr8k.token.txt"
    ).resolve()
    if not token.is_file():
        pytest.skip(f"real Flickr8k captions not found at {token}")
    result = read_captions(token)
    assert result.problems == []
    assert len(result) == 35460
    captions = group_by_image(result)
    assert len(captions) == 7092 and all(len(c) == 5 for c in captions.values())
    assert "2258277193_586949ec62.jpg" in captions
    assert not any(name.endswith(".1") for name in captions)
    splits = {r.image: r.split for r in result}
    assert sum(s == "train" for s in splits.values()) == 6000
    assert sum(s == "dev" for s in splits.values()) == 1000


def test_dev_is_cut_in_two_stable_halves():
    from captioner.data.caption_sets import DEV_PARTS, CaptionRecord, dev_part, in_splits

    names = [f"{1000 + i}_photo.jpg" for i in range(400)]
    parts = [dev_part(n) for n in names]
    assert set(parts) == set(DEV_PARTS) and 150 < parts.count("dev-select") < 250
    assert parts == [dev_part(n) for n in names]  # the same every run
    record = CaptionRecord(names[0], "a dog", split="dev")
    assert in_splits(record, ("dev",)) and in_splits(record, (parts[0],))
    assert not in_splits(record, ({"dev-select": "dev-report", "dev-report": "dev-select"}[parts[0]],))
    assert not in_splits(CaptionRecord("x.jpg", "a cat", split="train"), DEV_PARTS)


def test_language_model_text_never_includes_held_out_images(tmp_path):
    from captioner.captioning.train import _lm_records
    from captioner.data.caption_sets import CaptionRecord

    text = tmp_path / "lm.csv"
    text.write_text("image,caption,split\na.jpg,a dog runs,train\nb.jpg,a cat sits,test\n"
                    "c.jpg,a boat floats,dev\nd.jpg,a bird sings,\ne.jpg,a car waits,\n")
    records = [CaptionRecord("d.jpg", "a bird sings", split="test")]  # held out by the data set
    assert [r.caption for r in _lm_records(text, records)] == ["a dog runs", "a car waits"]


def test_vocabulary_takes_words_the_photos_never_show_from_the_text():
    from types import SimpleNamespace

    from captioner.captioning.train import training_vocabulary
    from captioner.data.caption_sets import CaptionRecord

    train = SimpleNamespace(names=["a.jpg"], captions=[["a dog runs"] * 2])
    lm = [CaptionRecord("a.jpg", "a dog runs"), CaptionRecord("z.jpg", "a zebra runs"),
          CaptionRecord("z.jpg", "the zebra grazes"), CaptionRecord("y.jpg", "a yak")]
    vocab = training_vocabulary(train, lm, min_count=2)
    assert "zebra" in vocab.word_to_id and "yak" not in vocab.word_to_id
    # a training photo's captions count once, though the text file holds them again
    assert "dog" in vocab.word_to_id and training_vocabulary(train, lm, 3).word_to_id.get("dog") is None
