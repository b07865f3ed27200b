"""The sentence grammar of the synthetic corpus: a small phrase-structure grammar over :mod:`.words`.

About twenty sentence frames (transitive actions with selectional classes, motion with destinations,
giving, reported speech, existentials, descriptions, habits, plans, passives, questions, imperatives,
weather, prices, ages and clock times, two-clause sentences); subjects carry person, number and gender
so that agreement and possessives are right. :func:`generate_sentences` draws the distinct sentences
of each set (test first, then dev, then train, each from its own seeded stream, no sentence in two
sets); :func:`text_stats` summarises them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from specenh.data.synthetic.constants import GENERATOR_VERSION
from specenh.data.synthetic.words import (
    ADJ_ANIMAL, ADJ_BAKED, ADJ_CLASS, ADJ_COOKED, ADJ_DRINK, ADJ_FOOD, ADJ_FRUIT, ADJ_PERSON, ADJ_PLACE, ADJ_PRED,
    ADJ_PRED_PERSON, ADJ_PRED_THING, ADV_FREQ, ADV_MANNER, ANIMAL_INTRANS, ANIMALS, BAKED, CONJ_COORD, CONJ_SUB,
    COOKABLE, COOKED_MASS, DAY_PARTS, DAYS, DRINK_MEASURES, DRINKS, ESCORT, FOOD_VERBS, FRUIT_VEG, GIVE,
    INTENSIFIERS, INTRANS_PERSON, MAX_COUNT, MEASURES, MODALS, MONTHS, MOTION, MOTION_PREPS, NAMES_F, NAMES_M,
    OBJECT_CLASSES, OTHER_FOOD, PANTRY_MASS, PEOPLE_GROUPS, PLACES, PRONOUN_OBJ, PUT_VERBS, RELATIVES_F,
    RELATIVES_M, RELATIVES_X, RIDEABLE, RIDEABLE_VEHICLES, ROLES, ROLES_F, ROLES_M, SAY_VERBS, SEASONS,
    STATIC_PREPS, STATIVE, SURFACE_SPOTS, TO_VERBS, TRANSITIVE, TRANSPORT, _VOWELS, Noun, Verb, _nouns, _verbs,
    number_words, ordinal_words, verb)

MIN_WORDS, MAX_WORDS = 6, 16


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
    """Seeded random generator of natural English sentences over the lexicon of :mod:`.words`.

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
