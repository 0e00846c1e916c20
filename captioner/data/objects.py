"""The COCO objects (and people) a caption names, through a synonym table.

"puppy" is a dog, "men" and "skier" are people, "hot dog" is food and not a dog: multi-word
names are matched first. The hallucination rates (evaluation.hallucination), the guidance that
holds back unsupported objects and the tag calibration all read captions through this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from captioner.data.text import tokenize

PEOPLE = "person"
# canonical object: the words that name it (plural forms are added by ``_forms``).
OBJECT_SYNONYMS: dict[str, tuple[str, ...]] = {
    PEOPLE: ("person", "people", "man", "woman", "men", "women", "boy", "girl", "child",
             "children", "kid", "baby", "toddler", "lady", "guy", "gentleman", "adult",
             "teenager", "teen", "player", "skier", "surfer", "skateboarder", "snowboarder",
             "rider", "biker", "cyclist", "worker", "crowd", "family", "couple", "friend",
             "chef", "officer", "policeman", "soldier", "climber", "swimmer", "runner",
             "dancer", "athlete", "tourist", "spectator", "pedestrian", "someone", "daughter",
             "son", "mother", "father", "mom", "dad", "brother", "sister", "wife", "husband",
             "bride", "groom", "student", "youngster", "infant", "batter", "catcher", "pitcher",
             "umpire", "goalie", "hiker", "jockey", "cowboy", "skater", "gymnast", "wrestler"),
    "bicycle": ("bicycle", "bike"),
    "car": ("car", "automobile", "van", "taxi", "suv", "jeep", "sedan"),
    "motorcycle": ("motorcycle", "motorbike", "motor bike", "scooter", "moped", "dirt bike"),
    "airplane": ("airplane", "aeroplane", "plane", "jet", "aircraft", "airliner", "jetliner"),
    "bus": ("bus",),
    "train": ("train", "locomotive", "tram", "subway"),
    "truck": ("truck", "lorry"),
    "boat": ("boat", "ship", "kayak", "canoe", "sailboat", "yacht", "raft", "ferry"),
    "traffic light": ("traffic light", "stop light", "traffic signal"),
    "fire hydrant": ("fire hydrant", "hydrant"),
    "stop sign": ("stop sign",),
    "parking meter": ("parking meter", "meter"),
    "bench": ("bench",),
    "bird": ("bird", "duck", "goose", "swan", "pigeon", "seagull", "gull", "parrot", "owl",
             "eagle", "chicken", "hen", "rooster", "penguin", "flamingo", "crow", "geese"),
    "cat": ("cat", "kitten", "kitty"),
    "dog": ("dog", "puppy", "pup", "terrier", "poodle", "retriever", "collie", "labrador",
            "dachshund", "beagle", "greyhound", "bulldog", "pitbull", "chihuahua", "husky",
            "shepherd", "spaniel", "doberman", "rottweiler", "pug", "hound"),
    "horse": ("horse", "pony", "foal", "stallion", "mare"),
    "sheep": ("sheep", "lamb"),
    "cow": ("cow", "cattle", "bull", "calf", "ox", "oxen"),
    "elephant": ("elephant",),
    "bear": ("bear", "grizzly"),
    "zebra": ("zebra",),
    "giraffe": ("giraffe",),
    "backpack": ("backpack", "rucksack"),
    "umbrella": ("umbrella", "parasol"),
    "handbag": ("handbag", "purse"),
    "tie": ("tie", "necktie"),
    "suitcase": ("suitcase", "luggage"),
    "frisbee": ("frisbee",),
    "skis": ("ski", "skis"),
    "snowboard": ("snowboard",),
    "sports ball": ("ball", "football", "soccer ball", "basketball", "baseball", "volleyball",
                    "tennis ball"),
    "kite": ("kite",),
    "baseball bat": ("baseball bat", "bat"),
    "baseball glove": ("baseball glove", "glove", "mitt"),
    "skateboard": ("skateboard",),
    "surfboard": ("surfboard", "surf board", "boogie board", "bodyboard"),
    "tennis racket": ("tennis racket", "racket", "racquet"),
    "bottle": ("bottle",),
    "wine glass": ("wine glass",),
    "cup": ("cup", "mug"),
    "fork": ("fork",),
    "knife": ("knife", "knives"),
    "spoon": ("spoon",),
    "bowl": ("bowl",),
    "banana": ("banana",),
    "apple": ("apple",),
    "sandwich": ("sandwich", "burger", "hamburger"),
    "orange": ("orange",),
    "broccoli": ("broccoli",),
    "carrot": ("carrot",),
    "hot dog": ("hot dog", "hotdog"),
    "pizza": ("pizza",),
    "donut": ("donut", "doughnut"),
    "cake": ("cake", "cupcake"),
    "chair": ("chair", "stool"),
    "couch": ("couch", "sofa"),
    "potted plant": ("potted plant", "houseplant", "plant"),
    "bed": ("bed",),
    "dining table": ("dining table", "table", "desk"),
    "toilet": ("toilet",),
    "tv": ("tv", "television", "monitor"),
    "laptop": ("laptop", "computer", "notebook"),
    "mouse": ("mouse",),
    "remote": ("remote", "controller"),
    "keyboard": ("keyboard",),
    "cell phone": ("cell phone", "phone", "cellphone", "smartphone"),
    "microwave": ("microwave",),
    "oven": ("oven", "stove"),
    "toaster": ("toaster",),
    "sink": ("sink",),
    "refrigerator": ("refrigerator", "fridge"),
    "book": ("book",),
    "clock": ("clock",),
    "vase": ("vase",),
    "scissors": ("scissors",),
    "teddy bear": ("teddy bear", "teddy", "stuffed animal"),
    "hair drier": ("hair drier", "hair dryer", "hairdryer", "blow dryer"),
    "toothbrush": ("toothbrush",),
}


def _forms(name: str) -> set[str]:
    """A name and its plural ("bus" -> "buses", "puppy" -> "puppies", "knife" -> "knives")."""
    head, _, last = name.rpartition(" ")
    plurals = {last + "s", last + "es"}
    if last.endswith("y"):
        plurals.add(last[:-1] + "ies")
    if last.endswith("man"):
        plurals.add(last[:-3] + "men")
    return {name} | {f"{head} {p}".strip() for p in plurals}


def _phrase_table() -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for obj, names in OBJECT_SYNONYMS.items():
        for name in names:
            for form in _forms(name):
                table.setdefault(tuple(form.split()), obj)
    return table


PHRASES = _phrase_table()
PHRASES.pop(("skies",), None)  # "ski" + "es" is the sky's plural, not skis
LONGEST = max(map(len, PHRASES))


def caption_objects(caption: str | Sequence[str]) -> set[str]:
    """The COCO objects (and "person") a caption names, longest phrases first."""
    words = tokenize(caption) if isinstance(caption, str) else list(caption)
    found, i = set(), 0
    while i < len(words):
        for size in range(min(LONGEST, len(words) - i), 0, -1):
            obj = PHRASES.get(tuple(words[i : i + size]))
            if obj is not None:
                found.add(obj)
                i += size
                break
        else:
            i += 1
    return found


def reference_objects(references: Iterable[str]) -> set[str]:
    """The objects any of an image's references names."""
    return set().union(*(caption_objects(r) for r in references))
