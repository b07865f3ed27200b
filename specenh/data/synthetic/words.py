"""Lexicon of the synthetic corpus: self-written word lists by class and the English inflection they need.

Names, people, relatives, things by class (with the adjectives and counts that fit them), food,
animals, places with the prepositions they take, adjectives, adverbs, numbers and ordinals spelled
out, days and months; verbs with all their forms (``verb("take:took:taken")``) grouped by the object
classes they take. Everything here is data plus small pure functions; the grammar that combines
them is :mod:`specenh.data.synthetic.grammar`.
"""
from __future__ import annotations

from dataclasses import dataclass


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
