"""Objects a caption names that its references do not: CHAIR (Rohrbach et al. 2018).

A caption's objects are the COCO classes (plus "person") that its words name, through the
synonym table of ``captioner.data.objects``. An image's true objects are those its human
references name (CHAIR also reads COCO's segmentations; a caption file has only the
references). Then:
- ``CHAIR-s``: the share of captions naming at least one object no reference names;
- ``CHAIR-i``: the share of object mentions (each object once per caption) that are such;
- ``invented dog``: the share of captions saying "dog" where no reference has one;
- ``named``: the share of images whose references name an object where the caption names one
  of them (does the caption say what is there).
All on a 0-100 scale, like the other caption scores.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from captioner.data.objects import caption_objects, reference_objects


def hallucination(hypotheses: Mapping[Hashable, str],
                  references: Mapping[Hashable, Sequence[str]]) -> dict:
    """CHAIR-s, CHAIR-i, invented dog and named (0-100) of captions against their references."""
    captions = invented = mentions = invented_mentions = dogs = named = with_objects = 0
    for key, caption in hypotheses.items():
        truth, said = reference_objects(references[key]), caption_objects(caption)
        wrong = said - truth
        captions += 1
        invented += bool(wrong)
        mentions += len(said)
        invented_mentions += len(wrong)
        dogs += "dog" in wrong
        if truth:
            with_objects += 1
            named += bool(said & truth)
    share = lambda part, whole: 100.0 * part / whole if whole else 0.0  # noqa: E731
    return {"CHAIR-s": share(invented, captions), "CHAIR-i": share(invented_mentions, mentions),
            "invented dog": share(dogs, captions), "named": share(named, with_objects)}
