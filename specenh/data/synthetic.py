"""Embedded synthetic multi-voice English corpus for ``egs/mini`` (espeak-ng through ``espeakng-loader``).

Corpus design
-------------
*Text.* Sentences come from a small phrase-structure grammar written for this module: about
twenty sentence frames (transitive actions with selectional classes, motion with destinations,
giving, reported speech, existentials, descriptions, habits, plans, passives, questions,
imperatives, weather, prices, ages and clock times, two-clause sentences) over self-written
word lists (names, people, relatives, things by class, food, animals by class, places with the
prepositions they take, adjectives, adverbs, numbers spelled out, days, months). Verbs carry
their inflections, subjects their person, number and gender, so agreement and possessives are
right ("the old farmer carried seven heavy baskets to the market before noon"). Transcripts are
lower-case words; the only punctuation is the apostrophe ("didn't", "anna's", "o'clock").
Every sentence of the corpus is distinct, and the three sets are generated test first, then
dev, then train, each from its own seeded stream, rejecting any sentence already taken: the
test set therefore depends only on ``seed`` and ``num_test`` and the sets never share a
sentence. All sets draw from the same lexicon, so test words are (almost) all seen in train.

*Voices.* A voice is an espeak-ng English accent (en-us, en, en-gb-x-rp, en-gb-scotland, ...)
combined with a voice variant (``+m3``, ``+f2``, ``+klatt4``, ...; only ordinary-sounding
variants: no whisper, echo or robot voices) and its own speaking rate (words per minute),
pitch and pitch range. Each utterance jitters rate and pitch slightly around its voice's
values. The voice id is the Kaldi speaker id (``v012``); utterance ids start with it
(``v012-000345``). Train, dev and test voices are disjoint (no shared accent+variant pair)
and each set has female and male variants.

*Audio.* espeak-ng synthesises at 22050 Hz; leading and trailing silence is trimmed to a fixed
100 ms margin, the signal is resampled to 16 kHz with soxr, peak-normalised to -3 dBFS and
written as 16-bit mono wav (atomically).

*Determinism.* espeak-ng keeps synthesis state in static variables (pitch flutter phase,
gain control, ...) that no API call resets, so the same text synthesised twice in one
process gives different samples. Each utterance is therefore synthesised by a freshly
loaded library instance (``dlclose`` + ``dlopen``, cheap: ~5 ms) with its random seed set
from the utterance id: an utterance's wav is a pure function of its text and voice
parameters, independent of ``num_jobs``, of scheduling and of resuming. The C library is
not thread safe: parallel jobs are separate processes, each with its own instance.

*Resuming.* ``wav_dir/<set>/.prepare_mini.json`` records a fingerprint of everything that
determines the set's audio. A re-run with the same fingerprint keeps the wavs that exist
(they were written atomically) and synthesises only the missing ones; a finished set is
not touched again.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import multiprocessing
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from specenh.data.kaldi import DataDir, c_sort_key, save_data_dir, write_kv

log = logging.getLogger(__name__)

#: bump when anything that changes the generated text or audio changes
GENERATOR_VERSION = 1
SETS: tuple[str, ...] = ("train", "dev", "test")
#: number of voices (speakers) per set
VOICES_PER_SET: dict[str, int] = {"train": 60, "dev": 8, "test": 12}
#: of which female-variant voices
FEMALE_VOICES_PER_SET: dict[str, int] = {"train": 24, "dev": 3, "test": 5}
MIN_WORDS, MAX_WORDS = 6, 16

# ===========================================================================
# Lexicon (self-written word lists)
# ===========================================================================


def _w(s: str) -> tuple[str, ...]:
    """Split a whitespace-separated word list."""
    return tuple(s.split())


_ES_ENDINGS = ("s", "x", "z", "ch", "sh")
_VOWELS = "aeiou"


def pluralize(word: str) -> str:
    """Regular English plural of the last word of ``word`` (irregular ones are listed explicitly)."""
    head, _, last = word.rpartition(" ")
    if last.endswith(_ES_ENDINGS):
        p = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in _VOWELS:
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


@dataclass(frozen=True)
class Noun:
    """A countable noun with its plural (``mass`` nouns have no plural and take no article)."""

    sg: str
    pl: str
    mass: bool = False


def _nouns(spec: str) -> tuple[Noun, ...]:
    """Parse ``"box knife:knives sheep:sheep post_office"`` (``_`` joins multi-word nouns)."""
    out = []
    for tok in spec.split():
        sg, _, pl = tok.partition(":")
        sg = sg.replace("_", " ")
        out.append(Noun(sg, pl.replace("_", " ") if pl else pluralize(sg)))
    return tuple(out)


def _mass(spec: str) -> tuple[Noun, ...]:
    return tuple(Noun(w.replace("_", " "), w.replace("_", " "), mass=True) for w in spec.split())


# --- people ----------------------------------------------------------------
NAMES_F = _w("""alice anna betty carla chloe claire diana edith ellen emma fiona grace hannah helen
    irene julia karen kate laura linda lucy maria martha nina nora olivia paula rachel rose ruth
    sarah sophie susan teresa vera wendy agnes judy molly""")
NAMES_M = _w("""adam alan arthur ben brian charles daniel david dennis edward felix frank george
    harold harry henry jack james joseph kevin leo mark martin michael nathan oscar owen patrick
    peter robert samuel simon steven thomas tom victor walter william""")
ROLES_F = _nouns("queen princess actress:actresses waitress:waitresses nun")
ROLES_M = _nouns("king prince monk fisherman:fishermen postman:postmen")
ROLES = _nouns("""farmer teacher doctor nurse baker driver painter sailor student pilot soldier writer
    singer dancer gardener carpenter butcher tailor miner shepherd merchant banker lawyer judge mayor
    clerk guard cook hunter builder engineer scientist artist musician officer captain neighbor
    stranger visitor traveler customer manager porter librarian mechanic plumber firefighter
    professor poet reporter photographer shopkeeper servant knight pianist barber jeweler""")
PEOPLE_GROUPS = _nouns("child:children boy girl man:men woman:women worker tourist passenger villager")
RELATIVES_F = _w("mother sister aunt daughter wife grandmother niece")
RELATIVES_M = _w("father brother uncle son husband grandfather nephew")
RELATIVES_X = _w("cousin friend boss partner teacher doctor")
ADJ_PERSON = _w("""young old tall short kind clever tired busy happy angry quiet brave proud nervous
    cheerful patient careful lazy friendly polite honest gentle strict famous wise rich poor hungry
    sleepy lonely worried curious shy calm serious funny clumsy elderly""")

# --- things by class --------------------------------------------------------
SMALL_THINGS = _nouns("""key ring coin watch wallet purse necklace bracelet ticket map photograph stamp
    card button pen pencil notebook umbrella candle spoon cup knife:knives comb bell whistle compass
    flashlight envelope brooch badge""")
CONTAINERS = _nouns("""box bag basket bottle jar suitcase parcel package crate barrel sack bucket tin
    trunk chest jug kettle""")
CLOTHES = _nouns("""coat hat scarf:scarves shirt dress blanket towel jacket sweater glove boot sock shoe
    belt ribbon skirt apron cap uniform cloak""")
TOOLS = _nouns("hammer ladder shovel rope saw axe brush broom spade rake drill wrench needle chisel")
FURNITURE = _nouns("""chair table bench bed cupboard desk shelf:shelves lamp mirror clock sofa carpet
    rug stool wardrobe bookcase cabinet""")
INSTRUMENTS = _nouns("guitar violin drum piano:pianos flute trumpet harp cello banjo clarinet")
VEHICLES = _nouns("car truck bus boat cart wagon tractor van bicycle ship canoe sled taxi motorbike")
DOCUMENTS = _nouns("""letter book note report poem story list recipe message postcard newspaper
    magazine diary article contract form menu song""")
STRUCTURES = _nouns("fence wall roof gate shed barn house bridge tower hut cabin porch chimney garage")
# where a thing can be put down (used by "put"/"leave" frames and as a locative)
SURFACE_SPOTS = tuple(tuple(x.split()) for x in (
    "on the table", "under the table", "on the kitchen table", "on the top shelf", "on the bottom shelf",
    "under the bed", "beside the bed", "on the floor", "behind the door", "by the front door", "on the desk",
    "in the top drawer", "in the cupboard", "on the counter", "on the windowsill", "by the window",
    "on the bench", "behind the sofa", "under the sofa", "on the doorstep", "next to the stove",
    "in the corner", "under the stairs", "on the back seat", "beside the fireplace", "in the garage",
    "in the shed", "on the porch", "in the attic", "in the basement", "near the sink", "in the closet"))

# adjectives that fit each object class
ADJ_CLASS: dict[str, tuple[str, ...]] = {
    "small": _w("""small tiny little old new shiny rusty broken spare precious favorite silver golden cheap
        expensive lucky red blue green black brown"""),
    "container": _w("""big small large heavy empty full wooden metal leather plastic old new dusty broken
        brown red blue green cardboard"""),
    "clothes": _w("""red blue green yellow white black brown gray purple pink warm woolen cotton leather old
        new torn clean dirty wet dry striped spotted favorite long short thick thin"""),
    "tools": _w("old new rusty sharp heavy long short broken spare wooden metal small big"),
    "furniture": _w("""old new wooden heavy small large broken polished painted dusty comfortable round square
        antique white brown"""),
    "instruments": _w("old new wooden beautiful expensive cheap small broken shiny favorite"),
    "vehicles": _w("red blue green yellow white black gray old new fast rusty shiny small big muddy broken"),
    "documents": _w("""long short old new strange secret important beautiful sad funny famous boring
        handwritten torn folded"""),
    "structures": _w("old new tall low wooden stone broken painted white red ancient narrow high"),
}
ADJ_PRED_THING = _w("""heavy light expensive cheap beautiful old broken clean dirty wet dry dusty strange
    useful lovely ugly""")
# the largest count that sounds natural for each class ("seven baskets", not "ninety wardrobes")
MAX_COUNT: dict[str, int] = {"small": 30, "container": 20, "clothes": 12, "tools": 10, "furniture": 6,
                             "instruments": 5, "vehicles": 9, "documents": 40, "structures": 5, "food": 30,
                             "animals": 60, "people": 90}

# --- food -------------------------------------------------------------------
FRUIT_VEG = _nouns("""apple orange pear plum grape cherry potato:potatoes onion carrot tomato:tomatoes lemon
    peach strawberry mushroom cabbage pumpkin banana melon cucumber pepper apricot radish turnip""")
BAKED = _nouns("cake pie cookie pancake muffin loaf:loaves sandwich biscuit bun")
OTHER_FOOD = _nouns("egg sausage")
COOKABLE = _nouns("potato:potatoes onion carrot mushroom egg sausage pancake pepper pumpkin")
DRINKS = _mass("milk tea coffee juice lemonade water")
COOKED_MASS = _mass("rice soup porridge stew meat fish chicken corn oatmeal")
PANTRY_MASS = _mass("bread cheese butter honey sugar salt flour jam cream chocolate")
# measure word -> what it measures
MEASURES: dict[str, tuple[str, ...]] = {
    "loaf:loaves": _w("bread"),
    "piece": _w("cheese bread cake chocolate meat fish chicken"),
    "bowl": _w("soup rice porridge stew oatmeal cherries strawberries grapes"),
    "jar": _w("honey jam"),
    "bag": _w("flour sugar rice salt apples potatoes onions oranges"),
    "slice": _w("bread cheese cake meat"),
    "bar": _w("chocolate"),
    "plate": _w("rice fish chicken meat sandwiches cookies pancakes"),
    "basket": _w("apples pears plums eggs mushrooms strawberries"),
    "box": _w("cookies chocolates oranges peaches"),
}
DRINK_MEASURES: dict[str, tuple[str, ...]] = {
    "cup": _w("tea coffee milk"), "glass": _w("milk juice lemonade water"), "jug": _w("milk juice lemonade water"),
    "pot": _w("coffee tea"), "bottle": _w("milk juice lemonade water"),
}
ADJ_FRUIT = _w("fresh ripe sweet sour juicy green red yellow small large")
ADJ_BAKED = _w("fresh warm homemade delicious stale sweet")
ADJ_COOKED = _w("hot warm cold spicy salty delicious homemade")
ADJ_DRINK = _w("hot cold fresh sweet")
ADJ_FOOD = tuple(dict.fromkeys(ADJ_FRUIT + ADJ_BAKED + ADJ_COOKED + ADJ_DRINK))

# --- animals ------------------------------------------------------------------
ANIMALS: dict[str, tuple[Noun, ...]] = {
    "farm": _nouns("cow sheep:sheep goat pig donkey horse pony:ponies lamb calf:calves bull mule"),
    "pet": _nouns("dog cat puppy:puppies kitten rabbit parrot hamster"),
    "bird": _nouns("owl eagle crow sparrow pigeon swan duck goose:geese hen rooster robin"),
    "water": _nouns("frog turtle whale dolphin seal otter beaver"),
    "wild": _nouns("bear wolf:wolves fox deer:deer lion tiger elephant monkey camel squirrel mouse:mice"),
    "tiny": _nouns("bee butterfly spider ant beetle"),
}
ANIMAL_INTRANS: dict[str, tuple[str, ...]] = {
    "farm": _w("slept grazed rested waited wandered ran jumped"),
    "pet": _w("slept barked purred jumped hid played waited ran"),
    "bird": _w("sang flew landed waited rested hid"),
    "water": _w("swam dived rested waited hid splashed"),
    "wild": _w("slept ran hid rested wandered howled roared"),
    "tiny": _w("crawled buzzed landed hid"),
}
RIDEABLE = _w("horse pony donkey camel elephant mule")
RIDEABLE_VEHICLES = _nouns("bicycle motorbike bus tram train scooter")
ADJ_ANIMAL = _w("""small big brown white black gray hungry sleepy young old wild tame lazy noisy gentle
    clever spotted striped tiny playful thin lost""")

# --- adjectives for things and places ---------------------------------------
ADJ_PLACE = _w("""old new small large busy quiet crowded empty narrow wide dark ancient famous local
    nearby sunny dusty peaceful lonely""")
ADJ_PRED = _w("""quiet busy warm cold empty crowded dark bright clean dirty noisy peaceful lovely
    strange calm wet dry""")
ADJ_PRED_PERSON = _w("""tired happy angry nervous cheerful worried curious hungry sleepy calm proud
    surprised excited bored upset pleased confused""")
INTENSIFIERS = ("very", "quite", "rather", "a little", "too", "so", "really", "unusually")

# --- places -----------------------------------------------------------------
# kind: building | room | open | water | path | high
PLACES: dict[str, tuple[str, ...]] = {
    "building": _w("""market station library school church hospital bakery farm museum theater office
        factory shop store hotel restaurant castle palace mill stable airport bank cottage inn
        workshop prison lighthouse courthouse post_office town_hall gas_station bookshop pharmacy"""),
    "room": _w("""kitchen cellar attic hall bedroom classroom laboratory living_room dining_room
        basement study hallway"""),
    "open": _w("""garden field forest park valley meadow village town city square orchard yard camp
        playground desert jungle island vineyard cemetery"""),
    "water": _w("river lake harbor pond stream canal beach bay"),
    "path": _w("road street path bridge highway trail railway avenue lane"),
    "high": _w("hill mountain cliff ridge"),
}
STATIC_PREPS: dict[str, tuple[str, ...]] = {
    "building": ("at", "in", "inside", "outside", "near", "behind", "next to", "in front of", "across from"),
    "room": ("in", "in", "outside", "near"),
    "open": ("in", "near", "in the middle of", "at the edge of"),
    "water": ("by", "near", "beside", "along"),
    "path": ("on", "near", "along"),
    "high": ("on", "near", "on top of", "below"),
}
MOTION_PREPS: dict[str, tuple[str, ...]] = {
    "building": ("to", "to", "toward", "from", "back to", "past", "into"),
    "room": ("into", "out of", "to", "through"),
    "open": ("to", "through", "across", "into", "toward", "around", "out of"),
    "water": ("to", "across", "along", "toward", "around", "down to"),
    "path": ("along", "across", "down", "up", "over"),
    "high": ("up", "over", "down", "toward", "to the top of"),
}

# --- adverbs, times, numbers -------------------------------------------------
ADV_MANNER = _w("""slowly quickly carefully quietly loudly gently happily sadly calmly nervously proudly
    patiently politely eagerly softly firmly neatly easily secretly kindly bravely cheerfully silently
    warmly boldly anxiously wisely gracefully clumsily steadily swiftly lazily angrily briskly
    cautiously""")
ADV_FREQ = _w("usually often always never sometimes rarely")
DAYS = _w("monday tuesday wednesday thursday friday saturday sunday")
MONTHS = _w("january february march april may june july august september october november december")
SEASONS = _w("spring summer autumn winter")
DAY_PARTS = _w("morning afternoon evening night")
ONES = _w("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen")
TENS = _w("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
ORDINALS = _w("""zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh
    twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth""")
TENS_ORD = _w("_ _ twentieth thirtieth")
PRONOUN_OBJ = _w("me you him her us them")
MODALS = _w("could should must might would can may")
TO_VERBS = _w("wanted needed tried hoped planned forgot decided promised refused agreed learned "
              "offered managed started liked loved hated preferred")
SAY_VERBS = _w("""said thought knew believed noticed heard hoped explained promised remembered realized
    guessed suspected admitted mentioned agreed complained wrote dreamed""")
CONJ_COORD = ("and", "but")
CONJ_SUB = ("because", "when", "while", "after", "before", "until", "although", "as soon as", "since")


def number_words(n: int) -> str:
    """Spell 0 <= n < 1000 in words, without hyphens ("twenty one", "three hundred and five")."""
    if not 0 <= n < 1000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] if o == 0 else f"{TENS[t]} {ONES[o]}"
    h, rest = divmod(n, 100)
    head = f"{ONES[h]} hundred"
    return head if rest == 0 else f"{head} and {number_words(rest)}"


def ordinal_words(n: int) -> str:
    """Spell an ordinal 1 <= n <= 31 ("twenty first")."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal out of range: {n}")
    if n <= 20:
        return ORDINALS[n]
    t, o = divmod(n, 10)
    return TENS_ORD[t] if o == 0 else f"{TENS[t]} {ORDINALS[o]}"


# --- verbs ------------------------------------------------------------------
_DOUBLE_ING = frozenset(_w("run swim sit get put cut begin dig win hit set let forget spin shut"))
_ING_OVERRIDES = {"lie": "lying", "tie": "tying", "die": "dying", "see": "seeing", "be": "being"}


@dataclass(frozen=True)
class Verb:
    """A verb with all its forms; ``particle`` follows the verb ("look for", "pick up")."""

    base: str
    past: str
    pp: str
    third: str
    ing: str
    particle: str = ""

    def form(self, name: str) -> list[str]:
        """The words of form ``name`` (base, past, pp, third, ing) with the particle."""
        words = [getattr(self, name)]
        return words + ([self.particle] if self.particle else [])


def _regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in _VOWELS:
        return base[:-1] + "ied"
    return base + "ed"


def _third(base: str) -> str:
    if base == "have":
        return "has"
    if base.endswith(_ES_ENDINGS) or base.endswith("o"):
        return base + "es"
    if base.endswith("y") and base[-2] not in _VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def _ing(base: str, past: str) -> str:
    if base in _ING_OVERRIDES:
        return _ING_OVERRIDES[base]
    if base in _DOUBLE_ING or past == base + base[-1] + "ed":
        return base + base[-1] + "ing"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        return base[:-1] + "ing"
    return base + "ing"


def verb(spec: str) -> Verb:
    """Parse ``"base[:past[:pp]]"``; ``_`` joins a particle ("look_for", "pick_up:picked_up")."""
    parts = spec.split(":")
    base, _, particle = parts[0].partition("_")
    past = parts[1].split("_")[0] if len(parts) > 1 else _regular_past(base)
    pp = parts[2] if len(parts) > 2 else past
    return Verb(base, past, pp, _third(base), _ing(base, past), particle.replace("_", " "))


def _verbs(spec: str) -> tuple[Verb, ...]:
    return tuple(verb(s) for s in spec.split())


# transitive verbs by object class (the object noun lists are below in OBJECT_CLASSES)
TRANSITIVE: dict[str, tuple[Verb, ...]] = {
    "small": _verbs("""find:found lose:lost drop:dropped hide:hid:hidden keep:kept hold:held
        pick_up look_for borrow return need want buy:bought sell:sold carry bring:brought
        take:took:taken forget:forgot:forgotten check clean polish steal:stole:stolen notice examine
        choose:chose:chosen wrap:wrapped replace collect leave:left"""),
    "container": _verbs("""open close fill empty carry lift drop:dropped pack unpack seal label move
        push pull drag:dragged find:found lose:lost bring:brought deliver weigh"""),
    "clothes": _verbs("""wash fold iron wear:wore:worn mend sew:sewed:sewn knit:knitted buy:bought
        sell:sold borrow lose:lost find:found hang_up:hung_up dry pack tear:tore:torn try_on
        take_off:took_off:taken_off put_on:put_on"""),
    "tools": _verbs("""use borrow sharpen clean fix hold:held carry grab:grabbed drop:dropped
        find:found lose:lost buy:bought sell:sold return fetch need"""),
    "furniture": _verbs("""move paint polish repair sell:sold buy:bought clean dust carry push pull
        build:built fix cover break:broke:broken"""),
    "instruments": _verbs("""play tune carry sell:sold buy:bought borrow repair clean polish"""),
    "vehicles": _verbs("""drive:drove:driven park wash fix repair paint sell:sold buy:bought rent
        borrow stop:stopped steer push pull load unload start"""),
    "documents": _verbs("""read:read write:wrote:written sign send:sent print copy mail finish
        translate type find:found lose:lost receive check answer publish borrow return study
        memorize deliver"""),
    "structures": _verbs("""build:built paint repair fix clean climb reach guard lock unlock
        measure photograph draw:drew:drawn design sell:sold buy:bought rent"""),
    "animals": _verbs("""feed:fed wash chase catch:caught follow find:found lose:lost watch
        photograph sell:sold buy:bought brush lead:led rescue draw:drew:drawn hear:heard
        see:saw:seen spot:spotted scare frighten train"""),
    "person": _verbs("""meet:met visit call help thank follow greet invite warn teach:taught remind
        ask hug:hugged recognize admire interview pay:paid hire rescue wait_for look_for talk_to
        listen_to write_to:wrote_to:written_to smile_at wave_to see:saw:seen hear:heard miss join
        forgive:forgave:forgiven trust believe congratulate comfort serve"""),
}
FOOD_VERBS: dict[str, tuple[Verb, ...]] = {
    "eat": _verbs("eat:ate:eaten finish share taste try enjoy"),
    "drink": _verbs("drink:drank:drunk finish share"),
    "trade": _verbs("""buy:bought sell:sold order bring:brought carry deliver pack serve wrap:wrapped
        need want"""),
    "cook": _verbs("cook boil fry roast prepare heat"),
    "bake": _verbs("bake"),
    "cut": _verbs("slice chop:chopped peel wash cut:cut"),
    "grow": _verbs("grow:grew:grown pick plant"),
}
OBJECT_CLASSES: dict[str, tuple[Noun, ...]] = {
    "small": SMALL_THINGS, "container": CONTAINERS, "clothes": CLOTHES, "tools": TOOLS,
    "furniture": FURNITURE, "instruments": INSTRUMENTS, "vehicles": VEHICLES, "documents": DOCUMENTS,
    "structures": STRUCTURES,
}
# verbs that move a thing somewhere (object + destination)
TRANSPORT = _verbs("""carry bring:brought take:took:taken send:sent deliver push pull drag:dragged
    move ship:shipped return""")
# verbs that move a person somewhere
ESCORT = _verbs("drive:drove:driven take:took:taken walk follow lead:led guide send:sent bring:brought")
MOTION = _verbs("""walk run:ran:run drive:drove:driven ride:rode:ridden hurry wander sail fly:flew:flown
    travel:traveled return swim:swam:swum climb march jog:jogged rush stroll cycle crawl hike
    go:went:gone come:came:come row wade skate""")
INTRANS_PERSON = _verbs("""sleep:slept wait laugh smile sing:sang:sung dance work rest sit:sat
    stand:stood cry shout whisper cough pray study read:read listen argue complain agree apologize
    relax shiver yawn nod:nodded wave stay arrive leave:left""")
GIVE = _verbs("""give:gave:given hand sell:sold send:sent lend:lent show:showed:shown offer
    bring:brought pass throw:threw:thrown mail""")
# verbs that sound wrong in the progressive ("was believing")
STATIVE = frozenset(_w("believe trust recognize need want hear see miss forgive admire agree know notice"))
PUT_VERBS = _verbs("put:put leave:left place hide:hid:hidden set:set lay:laid drop:dropped")


# ===========================================================================
# Grammar
# ===========================================================================


@dataclass(frozen=True)
class NP:
    """A noun phrase with its agreement features (person 1-3, number, gender m/f/n)."""

    words: tuple[str, ...]
    plural: bool = False
    person: int = 3
    gender: str = "n"

    @property
    def possessive(self) -> str:
        """Possessive determiner that refers back to this NP."""
        if self.person == 1:
            return "our" if self.plural else "my"
        if self.person == 2:
            return "your"
        if self.plural:
            return "their"
        return {"m": "his", "f": "her"}.get(self.gender, "its")


_AN_EXCEPTIONS = ("hour", "honest", "honor", "heir")
_A_EXCEPTIONS = ("uni", "use", "usu", "uti", "eu", "one", "once", "ewe")


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (by sound, with the common spelling exceptions)."""
    if word.startswith(_AN_EXCEPTIONS):
        return "an"
    if word.startswith(_A_EXCEPTIONS):
        return "a"
    return "an" if word[0] in _VOWELS else "a"


def _be(np_: NP, tense: str) -> str:
    if tense == "past":
        return "was" if (not np_.plural and np_.person != 2) else "were"
    if np_.person == 1 and not np_.plural:
        return "am"
    return "is" if (not np_.plural and np_.person == 3) else "are"


def _has(np_: NP) -> str:
    return "has" if (not np_.plural and np_.person == 3) else "have"


def _does(np_: NP) -> str:
    return "does" if (not np_.plural and np_.person == 3) else "do"


class SentenceGenerator:
    """Seeded random generator of natural English sentences over the module's lexicon.

    ``sentence()`` returns ``(words, is_question)``; words are lower case, apostrophes allowed.
    """

    def __init__(self, rng: random.Random):
        self.r = rng
        self.force_past = False  # clauses inside compounds and reported speech stay in the past

    # --- random helpers -----------------------------------------------------
    def pick(self, seq: Sequence):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def weighted(self, options: Sequence[tuple[float, object]]):
        """Pick a value by weight. Values are built before the call: keep them cheap."""
        total = sum(w for w, _ in options)
        x = self.r.random() * total
        for w, v in options:
            x -= w
            if x < 0:
                return v
        return options[-1][1]

    def choose(self, options: Sequence[tuple[float, Callable[[], object]]]):
        """Pick a thunk by weight and call only that one."""
        return self.weighted(options)()

    def count(self, max_n: int) -> int:
        """A count for a plural noun phrase: mostly small, up to ``max_n``."""
        opts: list[tuple[float, Callable[[], int]]] = [(6, lambda: self.r.randint(2, min(12, max_n)))]
        if max_n >= 13:
            opts.append((2, lambda: self.r.randint(13, min(20, max_n))))
        if max_n >= 20:
            opts.append((2, lambda: 10 * self.r.randint(2, max_n // 10)))
        if max_n >= 21:
            opts.append((1, lambda: self.r.randint(21, max_n)))
        return self.choose(opts)

    # --- noun phrases -------------------------------------------------------
    def det_np(self, noun: Noun, adjs: Sequence[str], *, p_adj: float = 0.5, plural: bool | None = None,
               max_count: int = 12, possessor: NP | None = None, possessive_ok: bool = True) -> NP:
        """Determiner + optional adjective + noun ("the old farmer", "seven heavy baskets")."""
        if plural is None:
            plural = self.chance(0.35)
        mods = [self.pick(adjs)] if adjs and self.chance(p_adj) else []
        poss_w = 2 if possessive_ok else 0
        head = noun.pl if plural else noun.sg
        if possessor is not None:
            det = [possessor.possessive]
        elif plural:
            det = self.choose([
                (5, lambda: ["the"]), (3, lambda: number_words(self.count(max_count)).split()),
                (1, lambda: ["some"]), (1, lambda: ["these"]), (1, lambda: ["those"]), (1, lambda: ["a", "few"]),
                (1, lambda: ["several"]), (1, lambda: ["all", "the"]),
                (poss_w, lambda: [self.pick(("my", "your", "our", "their", "his", "her"))])])
        else:
            det = self.choose([
                (6, lambda: ["the"]), (4, lambda: ["a"]), (1, lambda: ["this"]), (1, lambda: ["that"]),
                (poss_w, lambda: [self.pick(("my", "your", "our", "their", "his", "her"))]),
                (poss_w / 2, lambda: [self.pick(NAMES_F + NAMES_M) + "'s"])])
        words = det + mods + head.split()
        if words[0] == "a":
            words[0] = article(words[1])
        return NP(tuple(words), plural=plural)

    def name(self) -> NP:
        if self.chance(0.5):
            return NP((self.pick(NAMES_F),), gender="f")
        return NP((self.pick(NAMES_M),), gender="m")

    def pronoun(self, subject: bool = True) -> NP:
        if subject:
            return self.pick([NP(("i",), person=1), NP(("you",), person=2), NP(("he",), gender="m"),
                              NP(("she",), gender="f"), NP(("we",), plural=True, person=1),
                              NP(("they",), plural=True)])
        return NP((self.pick(PRONOUN_OBJ),))

    def relative(self) -> NP:
        """``my sister``, ``anna's uncle``, ``the baker's daughter``."""
        gender, rel = self.weighted([(3, ("f", RELATIVES_F)), (3, ("m", RELATIVES_M)), (2, ("x", RELATIVES_X))])
        owner = self.choose([(2, lambda: [self.pick(("my", "your", "our", "his", "her", "their"))]),
                             (2, lambda: [self.name().words[0] + "'s"]),
                             (1, lambda: ["the", self.pick(ROLES).sg + "'s"])])
        adj = [self.pick(ADJ_PERSON)] if self.chance(0.2) else []
        g = gender if gender != "x" else self.pick("mf")
        return NP(tuple(owner + adj + [self.pick(rel)]), gender=g)

    def role(self) -> NP:
        """``the old farmer``, ``three sailors``, ``the queen``."""
        pool, g = self.weighted([(8, (ROLES, "x")), (1, (ROLES_F, "f")), (1, (ROLES_M, "m"))])
        np_ = self.det_np(self.pick(pool), ADJ_PERSON, p_adj=0.4, plural=self.chance(0.2), max_count=12)
        return NP(np_.words, plural=np_.plural, gender=g if g != "x" else self.pick("mf"))

    def group(self) -> NP:
        np_ = self.det_np(self.pick(PEOPLE_GROUPS), ADJ_PERSON, p_adj=0.4, plural=True, max_count=MAX_COUNT["people"])
        return NP(np_.words, plural=True)

    def pair(self) -> NP:
        a, b = self.name(), self.name()
        if a.words == b.words:
            return a
        return NP(a.words + ("and",) + b.words, plural=True)

    def person(self, *, allow_pronoun: bool = True, subject: bool = True) -> NP:
        """A noun phrase denoting one or more people."""
        return self.choose([(4, self.role), (3, self.name), (2 if allow_pronoun else 0, lambda: self.pronoun(subject)),
                            (2, self.relative), (1, self.group), (1, self.pair)])

    def thing(self, cls: str, *, possessor: NP | None = None, food_use: str = "trade") -> NP:
        """A noun phrase of object class ``cls`` (OBJECT_CLASSES, "food", "animals" or "person")."""
        if cls == "food":
            return self.food(food_use)
        if cls == "animals":
            return self.animal(self.pick(("farm", "pet", "bird", "wild")))[0]
        if cls == "person":
            return self.person(subject=False)
        return self.det_np(self.pick(OBJECT_CLASSES[cls]), ADJ_CLASS[cls], p_adj=0.5, max_count=MAX_COUNT[cls],
                           possessor=possessor if possessor is not None and self.chance(0.3) else None)

    def indefinite(self, cls: str) -> NP:
        """An indefinite noun phrase ("a rusty key", "seven brown ducks", "some fresh bread")."""
        if cls == "food":
            if self.chance(0.3):
                return NP(("some", self.pick(ADJ_BAKED), self.pick(PANTRY_MASS[:2]).sg))
            noun, adjs = self.pick(FRUIT_VEG + BAKED), ADJ_FRUIT
        elif cls == "animals":
            noun, adjs = self.pick(self.pick(list(ANIMALS.values()))), ADJ_ANIMAL
        else:
            noun, adjs = self.pick(OBJECT_CLASSES[cls]), ADJ_CLASS[cls]
        adj = [self.pick(adjs)] if self.chance(0.6) else []
        if self.chance(0.4):
            det = self.choose([(2, lambda: number_words(self.count(MAX_COUNT[cls]))), (1, lambda: "some"),
                               (1, lambda: "several"), (1, lambda: "a few"), (1, lambda: "two")])
            return NP(tuple(det.split() + adj + noun.pl.split()), plural=True)
        words = adj + noun.sg.split()
        return NP(tuple([article(words[0])] + words))

    def _measure(self, table: dict[str, tuple[str, ...]], allowed: Iterable[str] | None = None) -> NP:
        items = [(m, [x for x in what if allowed is None or x in allowed]) for m, what in table.items()]
        items = [(m, what) for m, what in items if what]
        spec, what = self.pick(items)
        measure = _nouns(spec)[0]
        if self.chance(0.35):
            head = [*number_words(self.r.randint(2, 6)).split(), measure.pl]
            return NP(tuple(head + ["of", self.pick(what)]), plural=True)
        return NP((article(measure.sg), measure.sg, "of", self.pick(what)))

    def _mass_np(self, nouns: Sequence[Noun], adjs: Sequence[str]) -> NP:
        det = self.weighted([(3, ["the"]), (2, ["some"]), (1, [self.pick(("my", "our", "their", "her", "his"))]),
                             (1, ["a", "little"]), (1, ["more"])])
        adj = [self.pick(adjs)] if self.chance(0.3) else []
        return NP(tuple(det + adj + [self.pick(nouns).sg]))

    def _count_food(self, nouns: Sequence[Noun], adjs: Sequence[str], plural: bool | None = None) -> NP:
        return self.det_np(self.pick(nouns), adjs, p_adj=0.45, plural=self.chance(0.6) if plural is None else plural,
                           max_count=MAX_COUNT["food"])

    def food(self, use: str = "trade") -> NP:
        """A food noun phrase that fits the verb group ``use`` (see FOOD_VERBS)."""
        fruit = lambda: self._count_food(FRUIT_VEG, ADJ_FRUIT)  # noqa: E731
        baked = lambda: self._count_food(BAKED, ADJ_BAKED)  # noqa: E731
        cooked = lambda: self._mass_np(COOKED_MASS, ADJ_COOKED)  # noqa: E731
        drink = lambda: self._mass_np(DRINKS, ADJ_DRINK)  # noqa: E731
        drink_measure = lambda: self._measure(DRINK_MEASURES)  # noqa: E731
        measure = lambda: self._measure(MEASURES)  # noqa: E731
        if use == "drink":
            return self.choose([(1, drink), (2, drink_measure)])
        if use == "eat":
            other = lambda: self._count_food(OTHER_FOOD, ADJ_COOKED)  # noqa: E731
            return self.choose([(3, fruit), (3, baked), (2, cooked), (1, other), (2, measure)])
        if use == "cook":
            return self.choose([(2, lambda: self._count_food(COOKABLE, ADJ_FRUIT)), (2, cooked)])
        if use == "bake":
            return self.choose([(4, baked), (1, lambda: NP(("some", "bread"))),
                                (1, lambda: self._measure({"loaf:loaves": ("bread",)}))])
        if use == "cut":
            return self.choose([(4, fruit), (1, lambda: self._measure(MEASURES, ("bread", "cheese", "cake")))])
        if use == "grow":
            return self._count_food(FRUIT_VEG, ADJ_FRUIT, plural=True)
        return self.choose([(3, fruit), (2, baked), (1, cooked), (1, drink), (2, measure), (1, drink_measure),
                            (1, lambda: self._mass_np(PANTRY_MASS, ADJ_BAKED))])

    def animal(self, cls: str | None = None) -> tuple[NP, str]:
        """An animal noun phrase and its class."""
        cls = cls or self.pick(list(ANIMALS))
        np_ = self.det_np(self.pick(ANIMALS[cls]), ADJ_ANIMAL, p_adj=0.45, plural=self.chance(0.35),
                          max_count=MAX_COUNT["animals"], possessive_ok=cls in ("farm", "pet"))
        return np_, cls

    PLACE_WEIGHTS = (("building", 5), ("room", 2), ("open", 4), ("water", 1.5), ("path", 1.5), ("high", 0.5))

    def place(self, kinds: Sequence[str] | None = None) -> tuple[list[str], str]:
        """``the [adj] place`` and its kind."""
        kind = self.weighted([(w, k) for k, w in self.PLACE_WEIGHTS if kinds is None or k in kinds])
        noun = self.pick(PLACES[kind]).replace("_", " ")
        words = ["the"]
        if self.chance(0.3):
            words.append(self.pick(ADJ_PLACE))
        return words + noun.split(), kind

    def static_pp(self, kinds: Sequence[str] | None = None, p_spot: float = 0.0) -> list[str]:
        """A locative phrase: ``near the old bridge``, ``under the table``."""
        if self.chance(p_spot):
            return list(self.pick(SURFACE_SPOTS))
        pl, kind = self.place(kinds)
        return self.pick(STATIC_PREPS[kind]).split() + pl

    def motion_pp(self, kinds: Sequence[str] | None = None) -> list[str]:
        """A directional phrase: ``across the river``, ``home``."""
        if self.chance(0.05):
            return [self.pick(("home", "back home"))]
        pl, kind = self.place(kinds)
        return self.pick(MOTION_PREPS[kind]).split() + pl

    # --- time expressions ----------------------------------------------------
    def clock(self) -> list[str]:
        h = number_words(self.r.randint(1, 12))
        return self.choose([
            (3, lambda: ["at", h, "o'clock"]), (2, lambda: ["at", "half", "past", h]),
            (1, lambda: ["at", "a", "quarter", "to", h]), (1, lambda: ["at", "a", "quarter", "past", h]),
            (2, lambda: ["at", h] + number_words(self.pick((10, 15, 20, 30, 40, 45, 50))).split())])

    def time(self, aspect: str) -> list[str]:
        """A time adverbial fitting ``aspect``: past | habit | future | perfect | any."""
        p, ri = self.pick, self.r.randint
        if aspect == "past":
            return self.choose([
                (3, lambda: p(("yesterday", "last night", "this morning", "earlier today", "at noon")).split()),
                (2, lambda: ["last", p(("week", "month", "year", "night") + SEASONS + DAYS)]),
                (2, lambda: ["on", p(DAYS), p(DAY_PARTS)]),
                (2, lambda: ["yesterday", p(DAY_PARTS[:3])]),
                (2, lambda: ["in", p(MONTHS)]),
                (1, lambda: [*number_words(ri(2, 12)).split(), p(("days", "weeks", "months", "years", "hours")),
                             "ago"]),
                (1, lambda: ["on", "the", *ordinal_words(ri(1, 31)).split(), "of", p(MONTHS)]),
                (2, self.clock),
                (1, lambda: ["before", p(("noon", "dawn", "dinner", "lunch", "breakfast", "sunset", "midnight"))]),
                (1, lambda: ["after", *p(("lunch", "dinner", "breakfast", "school", "work", "the storm",
                                          "the meeting")).split()]),
                (1, lambda: ["during", "the", p(("storm", "night", "holidays", "war", "festival", "concert"))]),
                (1, lambda: ["in", "the", "summer", "of", "nineteen", *number_words(ri(20, 99)).split()]),
            ])
        if aspect == "habit":
            return self.choose([
                (3, lambda: ["every", p(("day", "morning", "evening", "week", "year", "night") + DAYS + SEASONS)]),
                (2, lambda: ["on", p(DAYS) + "s"]),
                (2, lambda: ["in", "the", p(DAY_PARTS[:3])]),
                (1, lambda: [p(("once", "twice")), p(("a", "every")), p(("week", "month", "day", "year"))]),
                (1, self.clock),
                (1, lambda: ["in", p(SEASONS)]),
            ])
        if aspect == "future":
            return self.choose([
                (3, lambda: p(("tomorrow", "tonight", "soon", "later", "next week", "next year",
                               "next month")).split()),
                (2, lambda: ["next", p(DAYS + SEASONS)]),
                (2, lambda: ["on", p(DAYS)]),
                (2, lambda: ["tomorrow", p(DAY_PARTS[:3])]),
                (1, lambda: ["in", *number_words(ri(2, 12)).split(), p(("days", "weeks", "minutes", "hours"))]),
                (1, lambda: ["in", p(MONTHS)]),
                (1, self.clock),
                (1, lambda: ["before", *p(("noon", "dinner", "the end of the week", "the winter",
                                           "sunset")).split()]),
            ])
        if aspect == "perfect":
            return self.choose([
                (2, lambda: ["since", p(DAYS + MONTHS + ("breakfast", "lunch", "dawn"))]),
                (2, lambda: p(("this week", "this year", "this month", "today", "this morning", "before",
                               "twice")).split()),
                (1, lambda: ["for", *number_words(ri(2, 12)).split(), p(("days", "weeks", "years", "hours"))]),
            ])
        return self.time(self.pick(("past", "future")))

    # --- verb groups ----------------------------------------------------------
    def tense(self, allow_progressive: bool = True) -> str:
        if self.force_past:
            return self.weighted([(6, "past"), (1, "negpast"), (1 if allow_progressive else 0, "progressive")])
        return self.weighted([(10, "past"), (2, "habit"), (2, "future"), (1, "going"), (1.5, "modal"),
                              (1.5, "negpast"), (1, "perfect"), (1 if allow_progressive else 0, "progressive"),
                              (0.5, "negfuture")])

    def verb_group(self, v: Verb, subj: NP, tense: str) -> tuple[list[str], str]:
        """Inflect ``v`` for ``subj`` in ``tense``; returns the words and the time aspect that fits."""
        third = not subj.plural and subj.person == 3
        if tense == "past":
            return v.form("past"), "past"
        if tense == "habit":
            words = v.form("third" if third else "base")
            if self.chance(0.5):
                words = [self.pick(ADV_FREQ)] + words
            return words, "habit"
        if tense == "future":
            return ["will"] + v.form("base"), "future"
        if tense == "negfuture":
            return self.pick(("won't", "will not")).split() + v.form("base"), "future"
        if tense == "going":
            return [_be(subj, "present"), "going", "to"] + v.form("base"), "future"
        if tense == "modal":
            return [self.pick(MODALS)] + v.form("base"), "future"
        if tense == "negpast":
            if self.chance(0.25):
                return ["never"] + v.form("past"), "past"
            return self.pick(("didn't", "did not")).split() + v.form("base"), "past"
        if tense == "perfect":
            adv = [self.pick(("already", "just", "never", "finally"))] if self.chance(0.4) else []
            return [_has(subj)] + adv + v.form("pp"), "perfect"
        if tense == "progressive" and v.base not in STATIVE:
            return [_be(subj, "past")] + v.form("ing"), "past"
        if tense == "progressive":
            return v.form("past"), "past"
        raise ValueError(f"unknown tense {tense!r}")

    def adjuncts(self, aspect: str, *, p_place: float = 0.4, p_time: float = 0.45, p_manner: float = 0.15,
                 place_kinds: Sequence[str] | None = None) -> list[str]:
        """Optional manner adverb, place phrase and time phrase, in this natural order."""
        out: list[str] = []
        if self.chance(p_manner):
            out.append(self.pick(ADV_MANNER))
        if self.chance(p_place):
            out += self.static_pp(place_kinds)
        if self.chance(p_time):
            out += self.time(aspect)
        return out

    # --- clause frames ------------------------------------------------------------
    def clause(self, *, short: bool = False) -> list[str]:
        """A declarative clause (no final punctuation); ``short`` leaves out the adjuncts."""
        frames: list[tuple[float, Callable[..., list[str]]]] = [
            (14, self.f_transitive), (6, self.f_food), (5, self.f_transport), (6, self.f_motion),
            (4, self.f_give), (3, self.f_escort), (3, self.f_intransitive), (3, self.f_animal),
            (3, self.f_put), (2, self.f_ride), (3, self.f_describe),
        ]
        if not short:
            frames += [(3, self.f_say), (3, self.f_existential), (3, self.f_to_verb), (2, self.f_passive),
                       (1, self.f_weather), (1, self.f_price), (1, self.f_age), (1, self.f_schedule)]
        return self.weighted(frames)(short=short)

    def f_transitive(self, short: bool = False) -> list[str]:
        cls = self.weighted([(2, c) for c in OBJECT_CLASSES] + [(2, "animals"), (4, "person")])
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(TRANSITIVE[cls]), subj, self.tense())
        obj = self.thing(cls, possessor=subj)
        kinds = ("building", "room", "open") if cls in ("furniture", "instruments", "documents") else None
        tail = [] if short else self.adjuncts(aspect, place_kinds=kinds)
        return list(subj.words) + vg + list(obj.words) + tail

    def f_food(self, short: bool = False) -> list[str]:
        use = self.weighted([(3, "eat"), (1.5, "drink"), (4, "trade"), (1.5, "cook"), (1, "bake"), (1.5, "cut"),
                             (1, "grow")])
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(FOOD_VERBS[use]), subj, self.tense())
        kinds = ("open",) if use == "grow" else ("building", "room")
        tail = [] if short else self.adjuncts(aspect, p_place=0.45, place_kinds=kinds)
        return list(subj.words) + vg + list(self.food(use).words) + tail

    def f_transport(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(TRANSPORT), subj, self.tense())
        cls = self.pick(("small", "container", "container", "tools", "furniture", "instruments", "documents"))
        obj = self.thing(cls) if self.chance(0.8) else self.food("trade")
        tail = [] if short else self.adjuncts(aspect, p_place=0, p_time=0.5, p_manner=0.15)
        return list(subj.words) + vg + list(obj.words) + self.motion_pp(("building", "room", "open")) + tail

    def f_motion(self, short: bool = False) -> list[str]:
        subj = self.person()
        v = self.pick(MOTION)
        vg, aspect = self.verb_group(v, subj, self.tense())
        manner = [self.pick(ADV_MANNER)] if self.chance(0.25) else []
        kinds = {"sail": ("water",), "row": ("water",), "swim": ("water",), "wade": ("water",),
                 "climb": ("high", "building"), "fly": ("building", "open", "high")}.get(v.base)
        company = ["with", *self.person(allow_pronoun=False).words] if self.chance(0.12) else []
        tail = [] if short else self.adjuncts(aspect, p_place=0, p_manner=0)
        return list(subj.words) + vg + manner + self.motion_pp(kinds) + company + tail

    def f_give(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(GIVE), subj, self.tense(allow_progressive=False))
        cls = self.pick(("small", "container", "clothes", "documents", "instruments", "food", "tools"))
        obj = self.thing(cls)
        recipient = self.person(subject=False)
        if self.chance(0.5):
            core = list(recipient.words) + list(obj.words)
        else:
            core = list(obj.words) + ["to"] + list(recipient.words)
        tail = [] if short else self.adjuncts(aspect, p_place=0.2)
        return list(subj.words) + vg + core + tail

    def f_escort(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(ESCORT), subj, self.tense())
        obj = self.person(subject=False) if self.chance(0.7) else self.animal(self.pick(("farm", "pet")))[0]
        tail = [] if short else self.adjuncts(aspect, p_place=0)
        return list(subj.words) + vg + list(obj.words) + self.motion_pp(("building", "open", "path")) + tail

    def f_intransitive(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(INTRANS_PERSON), subj, self.tense())
        manner = [self.pick(ADV_MANNER)] if self.chance(0.4) else []
        tail = [] if short else self.adjuncts(aspect, p_place=0.7, p_manner=0, place_kinds=("building", "room", "open"))
        return list(subj.words) + vg + manner + tail

    def f_animal(self, short: bool = False) -> list[str]:
        np_, cls = self.animal()
        v = self.pick(ANIMAL_INTRANS[cls])
        manner = [self.pick(ADV_MANNER)] if self.chance(0.3) else []
        kinds = {"water": ("water",), "farm": ("open", "building"), "pet": ("room", "open"),
                 "bird": ("open", "water", "building"), "wild": ("open", "high"), "tiny": ("open", "room")}[cls]
        tail = [] if short else self.adjuncts("past", p_place=0.75, p_manner=0, place_kinds=kinds)
        return list(np_.words) + [v] + manner + tail

    def f_put(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(self.pick(PUT_VERBS), subj, self.tense())
        obj = self.thing(self.pick(("small", "container", "clothes", "tools", "documents")), possessor=subj)
        tail = [] if short else self.adjuncts(aspect, p_place=0, p_manner=0.1)
        return list(subj.words) + vg + list(obj.words) + list(self.pick(SURFACE_SPOTS)) + tail

    def f_ride(self, short: bool = False) -> list[str]:
        subj = self.person()
        vg, aspect = self.verb_group(verb("ride:rode:ridden"), subj, self.tense())
        if self.chance(0.5):
            name = self.pick(RIDEABLE)
            animal = next(n for n in ANIMALS["farm"] + ANIMALS["wild"] if n.sg == name)
            obj = self.det_np(animal, ADJ_ANIMAL, plural=False)
        else:
            obj = self.det_np(self.pick(RIDEABLE_VEHICLES), ADJ_CLASS["vehicles"], plural=False)
        tail = [] if short else self.adjuncts(aspect, p_place=0)
        return list(subj.words) + vg + list(obj.words) + self.motion_pp(("building", "open", "path", "water")) + tail

    def f_describe(self, short: bool = False) -> list[str]:
        kind = self.weighted([(3, "place"), (3, "person"), (2, "thing"), (1, "food")])
        tense = "past" if self.force_past else self.pick(("past", "past", "present"))
        if kind == "place":
            words, _ = self.place()
            subj, adjs = NP(tuple(words)), ADJ_PRED
            v = _be(subj, tense) if self.chance(0.7) else self.pick(("seemed", "looked", "felt"))
        elif kind == "person":
            subj, adjs = self.person(), ADJ_PRED_PERSON
            v = _be(subj, tense) if self.chance(0.7) else self.pick(("seemed", "looked", "felt", "became"))
        elif kind == "food":
            subj = self.food(self.pick(("eat", "drink")))
            adjs = ADJ_FOOD
            v = self.pick(("tasted", "smelled", "looked", _be(subj, tense)))
        else:
            subj = self.thing(self.pick([c for c in OBJECT_CLASSES if c not in ("documents", "structures")]))
            adjs = ADJ_PRED_THING
            v = _be(subj, tense) if self.chance(0.7) else self.pick(("looked", "seemed", "felt"))
        pred = ([self.pick(INTENSIFIERS)] if self.chance(0.5) else []) + [self.pick(adjs)]
        if self.chance(0.3):
            other = self.pick(adjs)
            if other != pred[-1]:
                pred += ["and", other]
        aspect = "habit" if v in ("is", "are", "am") else "past"
        p_place = {"place": 0.0, "person": 0.4, "thing": 0.0, "food": 0.0}[kind]
        tail = [] if short else self.adjuncts(aspect, p_place=p_place, p_manner=0,
                                              place_kinds=("building", "room", "open"))
        return list(subj.words) + v.split() + " ".join(pred).split() + tail

    def f_say(self, short: bool = False) -> list[str]:
        subj = self.person()
        lead = list(subj.words) + [self.pick(SAY_VERBS)]
        if lead[-1] in ("said", "explained", "promised", "mentioned", "admitted", "wrote") and self.chance(0.3):
            lead += ["to", *self.person(allow_pronoun=False, subject=False).words]
        inner = self.past_clause()
        if self.chance(0.75) and inner[0] != "that":
            lead.append("that")
        return lead + inner

    def f_existential(self, short: bool = False) -> list[str]:
        tense = self.pick(("past", "past", "present"))
        cls = self.pick(("small", "container", "clothes", "tools", "furniture", "instruments", "vehicles",
                         "documents", "animals", "food"))
        obj = self.indefinite(cls)
        be = ("were" if obj.plural else "was") if tense == "past" else ("are" if obj.plural else "is")
        kinds = {"furniture": ("room", "building"), "vehicles": ("building", "path", "open"),
                 "animals": ("open", "water", "building")}.get(cls, ("building", "room", "open"))
        where = list(self.pick(SURFACE_SPOTS)) if cls in ("small", "documents", "clothes") and self.chance(0.5) \
            else self.static_pp(kinds, p_spot=0)
        when = self.time("past") if tense == "past" and self.chance(0.4) else []
        return ["there", be] + list(obj.words) + where + when

    def f_to_verb(self, short: bool = False) -> list[str]:
        subj = self.person()
        lead = list(subj.words) + [self.pick(TO_VERBS), "to"]
        tail = [] if short else self.adjuncts("past", p_place=0.2, p_time=0.4, p_manner=0)
        return lead + self.bare_vp() + tail

    def bare_vp(self) -> list[str]:
        """An infinitival verb phrase ("buy some fresh bread at the bakery")."""
        kind = self.weighted([(4, "trans"), (2, "food"), (2, "motion"), (1, "transport")])
        if kind == "trans":
            cls = self.pick(list(TRANSITIVE))
            return self.pick(TRANSITIVE[cls]).form("base") + list(self.thing(cls).words)
        if kind == "food":
            use = self.pick(list(FOOD_VERBS))
            return self.pick(FOOD_VERBS[use]).form("base") + list(self.food(use).words)
        if kind == "motion":
            return self.pick(MOTION).form("base") + self.motion_pp(("building", "open", "path"))
        obj = self.thing(self.pick(("small", "container", "tools", "documents")))
        return self.pick(TRANSPORT).form("base") + list(obj.words) + self.motion_pp(("building", "room", "open"))

    def f_passive(self, short: bool = False) -> list[str]:
        cls = self.pick([c for c in OBJECT_CLASSES] + ["food", "animals"])
        if cls == "food":
            use = self.pick(("eat", "trade", "cook", "bake", "cut"))
            v, obj = self.pick([x for x in FOOD_VERBS[use] if x.base not in ("need", "want")]), self.food(use)
        else:
            v, obj = self.pick([x for x in TRANSITIVE[cls] if not x.particle]), self.thing(cls)
        be = "were" if obj.plural else "was"
        agent = ["by", *self.person(allow_pronoun=False, subject=False).words] if self.chance(0.6) else []
        tail = self.adjuncts("past", p_place=0.3, p_time=0.5, p_manner=0.1, place_kinds=("building", "room", "open"))
        return list(obj.words) + [be] + v.form("pp") + agent + tail

    def f_weather(self, short: bool = False) -> list[str]:
        place, kind = self.place(("open", "water", "high"))
        prep = {"open": "in", "water": "near", "high": "on"}[kind]
        form = self.weighted([(2, "verb"), (1, "wind"), (1, "fog")])
        if form == "verb":
            how = self.pick(("heavily", "all day", "all night", "for hours", "again", "a little", "lightly"))
            return ["it", self.pick(("rained", "snowed"))] + how.split() + [prep] + place + self.time("past")
        if form == "wind":
            adj = self.pick(("cold", "strong", "gentle", "warm", "fierce", "bitter"))
            return ["a", adj, "wind", "blew", self.pick(("across", "over", "through")), *place] + self.time("past")
        return ["a", self.pick(("thick", "heavy", "gray", "cold")), "fog", "covered", *place] + self.time("past")

    def f_price(self, short: bool = False) -> list[str]:
        subj = self.person()
        cls = self.pick(("small", "container", "clothes", "tools", "furniture", "instruments", "vehicles", "food"))
        obj = self.thing(cls)
        unit, small_unit = self.pick((("dollars", "cents"), ("pounds", "pence"), ("euros", "cents")))
        money = [*number_words(self.r.randint(2, 99)).split(), unit]
        if self.chance(0.25):
            money += ["and", *number_words(self.pick((10, 20, 25, 50, 75, 90))).split(), small_unit]
        tail = self.adjuncts("past", p_time=0.3, place_kinds=("building",))
        if self.chance(0.5):
            return list(subj.words) + ["paid"] + money + ["for"] + list(obj.words) + tail
        return list(subj.words) + [self.pick(("bought", "sold"))] + list(obj.words) + ["for"] + money + tail

    def f_age(self, short: bool = False) -> list[str]:
        if self.chance(0.5):
            subj = self.person(allow_pronoun=False)
            years = number_words(self.r.randint(3, 95)).split()
            if self.chance(0.5):
                pron = "they" if subj.plural else {"m": "he", "f": "she"}.get(subj.gender, "they")
                return ["when", *subj.words, _be(subj, "past"), *years, "years", "old", pron,
                        self.pick(("moved", "lived", "worked", "stayed")), *self.static_pp(("building", "open"))]
            return list(subj.words) + [_be(subj, "present"), *years, "years", "old"] + (
                ["next", self.pick(MONTHS)] if self.chance(0.3) else [])
        pl, _ = self.place(("building", "path"))
        age = self.pick(("two hundred", "three hundred", "four hundred", "five hundred", "a thousand",
                         "eighty", "ninety", "sixty", "one hundred and fifty"))
        return pl + self.pick(("is", "is nearly", "is almost", "is more than", "was")).split() + age.split() + [
            "years", "old"]

    def f_schedule(self, short: bool = False) -> list[str]:
        vehicle = self.pick(("train", "bus", "boat", "ferry", "plane", "coach"))
        v = self.pick(("leaves", "arrives", "departs", "stops here", "comes"))
        dest = self.place(("building",))[0] if self.chance(0.5) else ["the", "city"]
        return ["the", vehicle, self.pick(("to", "from")), *dest, *v.split()] + self.clock() + (
            ["every", self.pick(("day", "morning", "evening") + DAYS)] if self.chance(0.5) else [])

    # --- sentence-level frames ------------------------------------------------------
    def question(self) -> list[str]:
        """A yes/no or wh- question (the caller adds ``?`` for the synthesiser only)."""
        kind = self.weighted([(3, "did"), (2, "where"), (1, "why"), (1, "howmany"), (1, "have"), (1, "will"),
                              (1, "can"), (1, "who"), (1, "what_time"), (1, "is_open")])
        subj = self.person()
        if kind == "did":
            cls = self.pick(list(TRANSITIVE))
            return ["did", *subj.words, *self.pick(TRANSITIVE[cls]).form("base"), *self.thing(cls).words] + (
                self.static_pp(("building", "room", "open")) if self.chance(0.4) else []) + (
                self.time("past") if self.chance(0.4) else [])
        if kind == "where":
            obj = self.thing(self.pick(("small", "container", "clothes", "tools", "documents")), possessor=subj)
            v = self.pick(_verbs("put:put leave:left hide:hid find:found buy:bought keep:kept"))
            return ["where", "did", *subj.words, *v.form("base"), *obj.words] + (
                self.time("past") if self.chance(0.4) else [])
        if kind == "why":
            return ["why", _be(subj, "past"), *subj.words, self.pick(("so", "always", "still")),
                    self.pick(ADJ_PRED_PERSON)] + (
                self.time("past") if self.chance(0.5) else self.static_pp(("building", "room", "open"), p_spot=0))
        if kind == "howmany":
            cls = self.pick(("small", "container", "clothes", "tools", "documents"))
            v = self.pick([x for x in TRANSITIVE[cls] if not x.particle])
            return ["how", "many", self.pick(OBJECT_CLASSES[cls]).pl, "did", *subj.words, *v.form("base")] + \
                self.adjuncts("past", p_manner=0, place_kinds=("building", "room", "open"))
        if kind == "have":
            cls = self.pick(list(TRANSITIVE))
            v = self.pick(TRANSITIVE[cls])
            return [_has(subj), *subj.words, self.pick(("ever", "already", "really")), *v.form("pp"),
                    *self.thing(cls).words] + self.adjuncts("perfect", p_place=0.3, p_time=0.3, p_manner=0,
                                                            place_kinds=("building", "open"))
        if kind == "will":
            return [self.pick(("will", "can", "should", "could", "must")), *subj.words, *self.pick(MOTION).form("base"),
                    *self.motion_pp(("building", "open", "path"))] + self.time("future")
        if kind == "can":
            return [self.pick(("can", "could", "would")), self.pick(("you", "we", "they")),
                    *(["please"] if self.chance(0.3) else []), *self.bare_vp()] + (
                self.time("future") if self.chance(0.4) else [])
        if kind == "who":
            cls = self.pick(list(TRANSITIVE))
            return ["who", *self.pick(TRANSITIVE[cls]).form("past"), *self.thing(cls).words] + \
                self.adjuncts("past", p_manner=0, place_kinds=("building", "room", "open"))
        if kind == "what_time":
            v = self.pick(("leave", "arrive", "open", "close", "start", "finish", "come home", "wake up"))
            if v in ("open", "close"):
                subj = NP(tuple(self.place(("building",))[0]))
            return ["what", "time", _does(subj), *subj.words, *v.split()] + (
                self.time("habit") if self.chance(0.5) else [])
        pl, _ = self.place(("building",))
        return [self.pick(("is", "was")), *pl, self.pick(("open", "closed", "busy", "crowded", "quiet")),
                "on", self.pick(DAYS) + self.pick(("", "s"))]

    def imperative(self) -> list[str]:
        """A request or instruction."""
        lead = ["please"] if self.chance(0.4) else []
        kind = self.weighted([(3, "vp"), (2, "put"), (1, "dont")])
        if kind == "dont":
            return [*self.pick(("don't forget", "remember", "try", "never forget", "please remember")).split(), "to",
                    *self.bare_vp()] + (self.time("future") if self.chance(0.5) else [])
        if kind == "put":
            obj = self.thing(self.pick(("small", "container", "clothes", "tools", "documents")))
            return lead + [self.pick(("put", "leave", "place")), *obj.words, *self.pick(SURFACE_SPOTS)] + (
                self.time("future") if self.chance(0.3) else [])
        return lead + self.bare_vp() + (self.time("future") if self.chance(0.5) else [])

    def past_clause(self) -> list[str]:
        """A short clause in a past tense."""
        before, self.force_past = self.force_past, True
        try:
            return self.clause(short=True)
        finally:
            self.force_past = before

    def compound(self) -> list[str]:
        """Two short past clauses joined by a conjunction."""
        a = self.past_clause()
        b = self.past_clause()
        if self.chance(0.35):
            return a + [self.pick(CONJ_COORD)] + b
        conj = self.pick(CONJ_SUB).split()
        if self.chance(0.3):
            return conj + b + a
        return a + conj + b

    def sentence(self) -> tuple[list[str], bool]:
        """One sentence of MIN_WORDS..MAX_WORDS words and whether it is a question."""
        for _ in range(200):
            kind = self.weighted([(72, "clause"), (8, "question"), (6, "imperative"), (12, "compound"),
                                  (2, "fronted")])
            if kind == "question":
                words, q = self.question(), True
            elif kind == "imperative":
                words, q = self.imperative(), False
            elif kind == "compound":
                words, q = self.compound(), False
            elif kind == "fronted":
                words, q = self.time("past") + self.past_clause(), False
            else:
                words, q = self.clause(), False
            words = [t for w in words for t in w.split()]
            if MIN_WORDS <= len(words) <= MAX_WORDS:
                return words, q
        raise RuntimeError("sentence generator failed to produce a sentence of the allowed length")


# ===========================================================================
# Corpus plan: sentences, voices, utterances
# ===========================================================================


@dataclass(frozen=True)
class Sentence:
    text: str          # transcript: lower-case words, apostrophes only
    question: bool     # synthesised with a question intonation

    @property
    def tts_text(self) -> str:
        return self.text + ("?" if self.question else ".")


def generate_sentences(seed: int, counts: dict[str, int]) -> dict[str, list[Sentence]]:
    """Distinct sentences per set; no sentence in two sets. Test first, then dev, then train."""
    used: set[str] = set()
    out: dict[str, list[Sentence]] = {}
    for name in ("test", "dev", "train"):
        n = counts.get(name, 0)
        gen = SentenceGenerator(random.Random(f"specenh-mini-text-v{GENERATOR_VERSION}-{seed}-{name}"))
        sents: list[Sentence] = []
        misses = 0
        while len(sents) < n:
            words, q = gen.sentence()
            text = " ".join(words)
            if text in used:
                misses += 1
                if misses > 100 * n + 1000:
                    raise RuntimeError(f"cannot find {n} distinct sentences for {name} (got {len(sents)})")
                continue
            used.add(text)
            sents.append(Sentence(text, q))
        out[name] = sents
    return out


# --- voices ---------------------------------------------------------------------
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
           "en-029")
VARIANTS_M = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Lee", "john", "norbert", "robert", "rob",
              "quincy", "gustave", "Mario", "Michael", "ian", "travis", "klatt", "klatt2", "klatt3", "klatt4",
              "adam", "benjamin", "david", "edward", "boris", "max")
VARIANTS_F = ("f1", "f2", "f3", "f4", "f5", "linda", "belinda", "steph", "steph2", "aunty", "shelby")


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: accent + variant + prosody. ``vid`` is the Kaldi speaker id."""

    vid: str
    accent: str
    variant: str
    gender: str       # "m" | "f"
    rate: int         # words per minute
    pitch: int        # espeak 0..100 (50 = the variant's own)
    pitch_range: int  # espeak 0..100
    word_gap: int     # extra pause between words, units of 10 ms
    split: str

    @property
    def espeak_name(self) -> str:
        return f"{self.accent}+{self.variant}"


def build_voices(seed: int) -> dict[str, list[Voice]]:
    """Disjoint voice lists per set: distinct accent+variant pairs, gender-balanced per set."""
    rng = random.Random(f"specenh-mini-voices-v{GENERATOR_VERSION}-{seed}")
    pairs_f = [(a, v) for a in ACCENTS for v in VARIANTS_F]
    pairs_m = [(a, v) for a in ACCENTS for v in VARIANTS_M]
    rng.shuffle(pairs_f)
    rng.shuffle(pairs_m)
    out: dict[str, list[Voice]] = {}
    idx = 0
    for split in ("train", "dev", "test"):
        n_f = FEMALE_VOICES_PER_SET[split]
        n_m = VOICES_PER_SET[split] - n_f
        chosen = [(p, "f") for p in pairs_f[:n_f]] + [(p, "m") for p in pairs_m[:n_m]]
        del pairs_f[:n_f], pairs_m[:n_m]
        rng.shuffle(chosen)
        voices = []
        for (accent, variant), gender in chosen:
            voices.append(Voice(
                vid=f"v{idx:03d}", accent=accent, variant=variant, gender=gender,
                rate=rng.randint(120, 185), pitch=rng.randint(30, 75), pitch_range=rng.randint(30, 80),
                word_gap=rng.choice((0, 0, 0, 1)), split=split))
            idx += 1
        out[split] = voices
    return out


@dataclass(frozen=True)
class UttSpec:
    """Everything that determines one utterance's audio."""

    utt: str
    spk: str
    text: str
    tts_text: str
    voice: str        # espeak name, e.g. "en-us+m3"
    rate: int
    pitch: int
    pitch_range: int
    word_gap: int
    seed: int
    wav: str          # absolute output path


def _utt_seed(seed: int, utt: str) -> int:
    h = hashlib.sha256(f"specenh-mini-utt-{seed}-{utt}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def plan_set(split: str, sentences: Sequence[Sentence], voices: Sequence[Voice], wav_dir: Path,
             seed: int) -> list[UttSpec]:
    """Assign sentences to voices round-robin (in a seeded order) with per-utterance prosody jitter."""
    rng = random.Random(f"specenh-mini-plan-v{GENERATOR_VERSION}-{seed}-{split}")
    order = list(range(len(voices)))
    specs = []
    for k, sent in enumerate(sentences):
        if k % len(voices) == 0:
            rng.shuffle(order)
        v = voices[order[k % len(voices)]]
        utt = f"{v.vid}-{k:06d}"
        specs.append(UttSpec(
            utt=utt, spk=v.vid, text=sent.text, tts_text=sent.tts_text, voice=v.espeak_name,
            rate=max(80, v.rate + rng.randint(-8, 8)), pitch=min(99, max(0, v.pitch + rng.randint(-4, 4))),
            pitch_range=v.pitch_range, word_gap=v.word_gap, seed=_utt_seed(seed, utt),
            wav=str(wav_dir / split / f"{utt}.wav")))
    return specs


# ===========================================================================
# espeak-ng through ctypes
# ===========================================================================

class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised or asked to synthesise."""


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def espeak_paths() -> tuple[str, str]:
    """(library path, espeak-ng-data path) shipped by the ``espeakng-loader`` package."""
    try:
        import espeakng_loader
    except ImportError as e:
        raise EspeakError("the Python package 'espeakng-loader' is required for the synthetic corpus "
                          "(pip install espeakng-loader)") from e
    lib_path = espeakng_loader.get_library_path()
    try:
        data_path = espeakng_loader.get_data_path()
    except Exception as e:  # it raises RuntimeError when the data dir is missing
        raise EspeakError(f"espeak-ng data not found: {e}") from None
    if not Path(lib_path).is_file():
        raise EspeakError(f"espeak-ng library not found at {lib_path} (broken espeakng-loader install?)")
    return lib_path, data_path


def check_voices(voices: Iterable[Voice], data_path: str) -> None:
    """Raise EspeakError naming every accent or variant that the espeak-ng data lacks."""
    root = Path(data_path)
    langs = {p.name.lower() for p in (root / "lang").rglob("*") if p.is_file()}
    variants = {p.name for p in (root / "voices" / "!v").iterdir()} if (root / "voices" / "!v").is_dir() else set()
    missing = sorted({f"accent {v.accent}" for v in voices if v.accent not in langs}
                     | {f"variant {v.variant}" for v in voices if v.variant not in variants})
    if missing:
        raise EspeakError(f"espeak-ng data at {data_path} lacks: {', '.join(missing)}")


class Espeak:
    """espeak-ng (synchronous mode) through ctypes, reloaded for every utterance so that no
    synthesis state leaks from one utterance into the next (see the module docstring)."""

    def __init__(self, lib_path: str, data_path: str):
        self.lib_path, self.data_path = lib_path, data_path
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self._libc = ctypes.CDLL(None)
        self.sample_rate = 0
        self._load()  # fail early with a clear message
        self.version = self._version()
        self._unload()

    def _on_audio(self, wav, n: int, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def _load(self) -> None:
        try:
            lib = ctypes.CDLL(self.lib_path, mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise EspeakError(f"cannot load the espeak-ng library {self.lib_path}: {e}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT)
        if sr <= 0:
            raise EspeakError(f"espeak-ng ({self.lib_path}) failed to initialise with data {self.data_path} "
                              f"(code {sr})")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib, self.sample_rate = lib, sr

    def _unload(self) -> None:
        if self._lib is None:
            return
        import _ctypes

        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)
        self._lib = None

    def _version(self) -> str:
        assert self._lib is not None
        return (self._lib.espeak_Info(None) or b"?").decode("utf-8", "replace")

    def synthesize(self, spec: UttSpec) -> np.ndarray:
        """int16 samples at ``self.sample_rate`` for one utterance."""
        self._load()
        try:
            lib = self._lib
            assert lib is not None
            if lib.espeak_SetVoiceByName(spec.voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {spec.voice!r} (utterance {spec.utt})")
            for param, value in ((_PARAM_RATE, spec.rate), (_PARAM_PITCH, spec.pitch),
                                 (_PARAM_RANGE, spec.pitch_range), (_PARAM_WORDGAP, spec.word_gap)):
                lib.espeak_SetParameter(param, value, 0)
            lib.espeak_ng_SetRandSeed(spec.seed)
            self._libc.srand(ctypes.c_uint(spec.seed))
            self._chunks = []
            text = spec.tts_text.encode("utf-8")
            rc = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if rc != 0 or lib.espeak_Synchronize() != 0:
                raise EspeakError(f"espeak-ng failed to synthesise utterance {spec.utt} (code {rc})")
        finally:
            self._unload()
        if not self._chunks:
            raise EspeakError(f"espeak-ng returned no audio for utterance {spec.utt}: {spec.tts_text!r}")
        return np.concatenate(self._chunks)


# ===========================================================================
# Audio post-processing and the worker
# ===========================================================================

MARGIN_S = 0.1
PEAK_DBFS = -3.0
_TRIM_FRAME_S = 0.01
_TRIM_REL_DB = -50.0


def trim_silence(x: np.ndarray, sr: int, margin_s: float = MARGIN_S) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames 50 dB below the loudest) and leave exactly ``margin_s``
    (zero-padded where the signal had less)."""
    frame = max(1, int(round(_TRIM_FRAME_S * sr)))
    n_frames = len(x) // frame
    if n_frames == 0:
        raise ValueError("signal shorter than one frame")
    rms = np.sqrt(np.mean(x[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (_TRIM_REL_DB / 20))
    if rms.max() <= 0 or loud.size == 0:
        raise ValueError("silent signal")
    margin = int(round(margin_s * sr))
    start, end = loud[0] * frame, (loud[-1] + 1) * frame
    core = x[start:end]
    pre = np.zeros(margin, dtype=x.dtype)
    return np.concatenate([pre, core, pre])


def postprocess(pcm: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """int16 espeak output -> trimmed, resampled, peak-normalised float32."""
    from specenh.data.audio import resample

    x = trim_silence(pcm.astype(np.float32) / 32768.0, sr_in)
    y = resample(x, sr_in, sr_out)
    peak = float(np.max(np.abs(y)))
    return (y * (10 ** (PEAK_DBFS / 20) / peak)).astype(np.float32)


_ENGINE: Espeak | None = None


def _engine() -> Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak(*espeak_paths())
    return _ENGINE


def synthesize_utterance(spec: UttSpec, sample_rate: int) -> int:
    """Synthesise, post-process and write one wav; returns its number of samples."""
    from specenh.data.audio import write_wav

    eng = _engine()
    pcm = eng.synthesize(spec)
    try:
        wave = postprocess(pcm, eng.sample_rate, sample_rate)
    except ValueError as e:
        raise EspeakError(f"utterance {spec.utt}: {e} ({spec.voice}, {spec.tts_text!r})") from None
    write_wav(spec.wav, wave, sample_rate)
    return len(wave)


def _work(args: tuple[list[UttSpec], int]) -> list[tuple[str, int]]:
    specs, sample_rate = args
    return [(s.utt, synthesize_utterance(s, sample_rate)) for s in specs]


def _chunks(items: Sequence[UttSpec], size: int) -> Iterator[list[UttSpec]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def synthesize_all(specs: Sequence[UttSpec], sample_rate: int, num_jobs: int, desc: str = "") -> dict[str, int]:
    """Synthesise ``specs`` with ``num_jobs`` processes (one espeak instance each); utt -> samples."""
    from tqdm import tqdm

    out: dict[str, int] = {}
    if not specs:
        return out
    tasks = [(c, sample_rate) for c in _chunks(specs, 16)]
    with tqdm(total=len(specs), desc=desc, unit="utt", disable=None) as bar:
        if num_jobs <= 1:
            for t in tasks:
                for utt, n in _work(t):
                    out[utt] = n
                bar.update(len(t[0]))
        else:
            # spawn: a fresh interpreter per job, never a copy of a parent's library state or threads
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(num_jobs) as pool:
                for res in pool.imap_unordered(_work, tasks):
                    for utt, n in res:
                        out[utt] = n
                    bar.update(len(res))
    return out


# ===========================================================================
# Top level
# ===========================================================================

_MARKER = ".prepare_mini.json"


def _fingerprint(specs: Sequence[UttSpec], sample_rate: int, espeak_version: str) -> str:
    h = hashlib.sha256()
    h.update(f"v{GENERATOR_VERSION} sr={sample_rate} espeak={espeak_version} margin={MARGIN_S} "
             f"peak={PEAK_DBFS}\n".encode())
    for s in specs:  # the folder is left out: a moved wav dir stays valid
        h.update(json.dumps(asdict(s) | {"wav": Path(s.wav).name}, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_marker(path: Path, fingerprint: str, complete: bool) -> None:
    from specenh.utils.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "complete": complete}) + "\n")


def _wav_samples(path: str) -> int:
    import soundfile as sf

    return sf.info(path).frames


def synthesize_set(split: str, specs: Sequence[UttSpec], set_wav_dir: Path, sample_rate: int,
                   num_jobs: int) -> dict[str, int]:
    """Make sure every wav of the set exists; resume from a previous run with the same plan."""
    eng_version = _engine().version
    fp = _fingerprint(specs, sample_rate, eng_version)
    marker_path = set_wav_dir / _MARKER
    marker = _read_marker(marker_path)
    set_wav_dir.mkdir(parents=True, exist_ok=True)
    if marker.get("fingerprint") == fp:
        todo = [s for s in specs if not Path(s.wav).is_file()]
        if marker.get("complete") and not todo:
            log.info("%s: all %d wavs already there (%s), nothing to synthesise", split, len(specs), set_wav_dir)
        elif todo:
            log.info("%s: resuming, %d of %d wavs missing", split, len(todo), len(specs))
    else:
        todo = list(specs)
        _write_marker(marker_path, fp, complete=False)
    samples = synthesize_all(todo, sample_rate, num_jobs, desc=f"synth {split}")
    for s in specs:
        if s.utt not in samples:
            samples[s.utt] = _wav_samples(s.wav)
    _write_marker(marker_path, fp, complete=True)
    return samples


def prepare_mini(out_dir: str | Path, wav_dir: str | Path, *, seed: int = 0, num_train: int = 3000,
                 num_dev: int = 200, num_test: int = 300, num_jobs: int = 2,
                 sample_rate: int = 16000) -> dict[str, DataDir]:
    """Generate the synthetic corpus: Kaldi data dirs ``out_dir/{train,dev,test}`` and 16-bit mono
    wavs ``wav_dir/<set>/<utt>.wav``. Deterministic in ``seed``; resumable; returns the data dirs.

    Also writes ``spk2gender`` in each data dir and ``out_dir/voices.json`` (the voice table).
    """
    t0 = time.time()
    out_dir, wav_dir = Path(out_dir), Path(wav_dir).resolve()
    counts = {"train": num_train, "dev": num_dev, "test": num_test}
    for name, n in counts.items():
        if n < 0:
            raise ValueError(f"num_{name} must be >= 0, got {n}")
    if num_jobs < 1:
        raise ValueError(f"num_jobs must be >= 1, got {num_jobs}")
    lib_path, data_path = espeak_paths()
    voices = build_voices(seed)
    check_voices([v for vs in voices.values() for v in vs], data_path)
    sentences = generate_sentences(seed, counts)
    log.info("text: %s distinct sentences generated in %.1f s",
             " / ".join(f"{k} {len(v)}" for k, v in sentences.items()), time.time() - t0)
    _engine()  # load once here: a missing/broken library fails before any worker starts

    result: dict[str, DataDir] = {}
    for split in SETS:
        specs = plan_set(split, sentences[split], voices[split], wav_dir, seed)
        samples = synthesize_set(split, specs, wav_dir / split, sample_rate, num_jobs)
        d = DataDir(wav_scp={s.utt: s.wav for s in specs}, utt2spk={s.utt: s.spk for s in specs},
                    text={s.utt: s.text for s in specs},
                    utt2dur={s.utt: samples[s.utt] / sample_rate for s in specs})
        save_data_dir(d, out_dir / split)
        used = {s.spk for s in specs}
        write_kv(out_dir / split / "spk2gender", {v.vid: v.gender for v in voices[split] if v.vid in used})
        hours = sum(d.utt2dur.values()) / 3600
        log.info("%s: %d utterances, %d voices, %.2f h of audio", split, len(d), len(used), hours)
        result[split] = d
    _write_voice_table(out_dir / "voices.json", voices)
    log.info("synthetic corpus ready in %.1f s: %s", time.time() - t0, out_dir)
    return result


def _write_voice_table(path: Path, voices: dict[str, list[Voice]]) -> None:
    from specenh.utils.io import atomic_path

    table = [asdict(v) | {"espeak_name": v.espeak_name} for s in SETS for v in voices[s]]
    table.sort(key=lambda v: c_sort_key(v["vid"]))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(table, indent=1) + "\n")


def text_stats(sentences: dict[str, list[Sentence]]) -> dict[str, float]:
    """Distinct sentences, vocabulary size, words per sentence and test OOV rate w.r.t. train."""
    all_s = [s.text for v in sentences.values() for s in v]
    vocab = {w for t in all_s for w in t.split()}
    train_vocab = {w for s in sentences.get("train", []) for w in s.text.split()}
    test_tokens = [w for s in sentences.get("test", []) for w in s.text.split()]
    lens = [len(t.split()) for t in all_s]
    return {
        "distinct_sentences": len(set(all_s)),
        "vocabulary": len(vocab),
        "mean_words": float(np.mean(lens)) if lens else 0.0,
        "test_oov_rate": (sum(w not in train_vocab for w in test_tokens) / len(test_tokens)) if test_tokens else 0.0,
    }
