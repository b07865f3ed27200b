"""The one text normaliser used for scoring, applied identically to references and hypotheses.

WER is only comparable between systems when both sides were normalised the same way, so there is
exactly one normaliser, it is versioned, and its description and version are written next to every
score (``scores.json``, ``result.txt``). Change the rules -> bump ``NORMALIZER_VERSION``.

Rules, in order:

1. Apostrophe look-alikes (U+2019 ’, U+2018 ‘, U+02BC ʼ, U+2032 ′, U+FF07 ＇, U+0060 `, U+00B4 ´)
   become the ASCII apostrophe ``'``. This runs before step 2 because NFKC would turn the acute
   accent U+00B4 into a space plus a combining mark.
2. Unicode NFKC normalisation (full-width forms, ligatures such as "ﬁ", super-/subscript digits
   and compatibility characters fold to their plain forms).
3. Lower case (``str.lower``).
4. Every character that is not a letter (Unicode category L*), a combining mark (M*), a number
   (N*) or an apostrophe becomes a space: hyphens, dashes, quotes, periods, commas, underscores,
   symbols... So ``"well-known"`` -> ``"well known"`` and ``"3.5"`` -> ``"3 5"``. Digits are kept
   as they are (no number verbalisation: ``"21"`` stays ``"21"``).
5. Apostrophes are kept only inside words: leading and trailing apostrophes of every token are
   removed (``"don't"`` and ``"o'clock"`` stay, ``"'tis"`` -> ``"tis"``, ``"dogs'"`` -> ``"dogs"``,
   a lone ``"'"`` disappears).
6. Whitespace is collapsed to single spaces and the result is stripped.

A second, named normaliser, :data:`SPOKEN` (``specenh.textnorm.spoken``), is for judging with an ASR
trained on written-form text (the Whisper judge, :mod:`specenh.metrics.judge`): such a model writes
"in 1465", "$5", "21st" where a corpus with spoken-form references (LJSpeech's normalised column)
reads "in fourteen sixty-five", "five dollars", "twenty-first". It writes numbers out before the rules
above and folds a few written-form habits afterwards; see :func:`normalize_spoken`. Every score
records which normaliser made it (``scores.json``: ``normalizer``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

NORMALIZER_NAME = "specenh.textnorm"
NORMALIZER_VERSION = "1"
NORMALIZER_DESCRIPTION = (
    "apostrophe look-alikes -> '; Unicode NFKC; lower case; every character that is not a letter, "
    "combining mark, digit/number or apostrophe -> space (hyphens and all other punctuation split "
    "words); digits kept as-is; apostrophes kept only inside words (stripped at token edges); "
    "whitespace collapsed and stripped"
)

APOSTROPHE = "'"
_APOSTROPHE_LOOKALIKES = "\u2019\u2018\u02bc\u2032\uff07\u0060\u00b4"
_APOSTROPHE_TABLE = str.maketrans({c: APOSTROPHE for c in _APOSTROPHE_LOOKALIKES})
_KEPT_CATEGORIES = ("L", "M", "N")  # first letter of the Unicode general category


def _keep_char(c: str) -> bool:
    """True for letters, combining marks, numbers and the ASCII apostrophe."""
    return c == APOSTROPHE or unicodedata.category(c)[0] in _KEPT_CATEGORIES


def normalize_text(s: str) -> str:
    """Normalise one transcript for scoring (see the module docstring for the exact rules).

    >>> normalize_text("  Don’t  stop—the WELL-KNOWN ‘rock’ 'n' roll, No. 5!  ")
    "don't stop the well known rock n roll no 5"
    """
    s = s.translate(_APOSTROPHE_TABLE)
    s = unicodedata.normalize("NFKC", s)
    s = s.lower()
    s = "".join(c if _keep_char(c) else " " for c in s)
    tokens = (tok.strip(APOSTROPHE) for tok in s.split())
    return " ".join(tok for tok in tokens if tok)


def normalizer_info() -> dict[str, str]:
    """Name, version and description of the normaliser, as recorded with every score."""
    return {"name": NORMALIZER_NAME, "version": NORMALIZER_VERSION, "description": NORMALIZER_DESCRIPTION}


# --------------------------------------------------------------------------------------------
# spoken form: numbers written out, a few written-form habits folded (for written-form ASR judges)

SPOKEN_NAME = "specenh.textnorm.spoken"
SPOKEN_VERSION = "1"
SPOKEN_DESCRIPTION = (
    "NFKC; numbers written out as read aloud (1,000 -> one thousand; four-digit years 1010-1999 and "
    "2010-2099 in pairs: 1465 -> fourteen sixty-five, 1900 -> nineteen hundred, 1905 -> nineteen oh five; "
    "1880s -> eighteen eighties; 21st -> twenty-first; 3.5 -> three point five; $5 -> five dollars, "
    "5% -> five percent; & -> and); then the specenh.textnorm rules; then mr/mrs/dr -> mister/missus/doctor "
    "and the hesitations uh, um, umm, hmm, mm, mhm, er, erm dropped"
)

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (10 ** 3, "thousand"))
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}
_TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}
_HESITATIONS = frozenset("uh um umm hmm mm mhm er erm".split())

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # 1,234,567.89 or 1234 or 3.5
_RE_CURRENCY = re.compile(r"([$£€])\s?(" + _NUM + r")")
_RE_PERCENT = re.compile(r"(" + _NUM + r")\s?%")
_RE_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_RE_DECADE = re.compile(r"\b(\d{4})'?s\b")
_RE_NUMBER = re.compile(_NUM)


def cardinal(n: int) -> str:
    """``n`` in words, without "and": 115 -> "one hundred fifteen", 2001 -> "two thousand one",
    42 -> "forty-two" (the hyphen becomes a space in the later rules)."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("-" + _ONES[o] if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return _ONES[h] + " hundred" + (" " + cardinal(r) if r else "")
    for value, word in _SCALES:
        if n >= value:
            q, r = divmod(n, value)
            return cardinal(q) + " " + word + (" " + cardinal(r) if r else "")
    raise AssertionError("unreachable")  # pragma: no cover


def year(n: int) -> str:
    """A four-digit year as read: 1465 -> "fourteen sixty-five", 1900 -> "nineteen hundred",
    1905 -> "nineteen oh five"; 1000-1009, 2000-2009 and years outside 1010-2099 are read as cardinals."""
    if not (1010 <= n <= 1999 or 2010 <= n <= 2099):
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return cardinal(hi) + " hundred"
    if lo < 10:
        return cardinal(hi) + " oh " + _ONES[lo]
    return cardinal(hi) + " " + cardinal(lo)


def _last_word(words: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the last word of ``words`` (after the last space or hyphen)."""
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    return words[:cut] + fn(words[cut:])


def ordinal(n: int) -> str:
    """21 -> "twenty-first", 12 -> "twelfth", 40 -> "fortieth", 100 -> "one hundredth"."""
    def one(w: str) -> str:
        if w in _ORDINAL_IRREGULAR:
            return _ORDINAL_IRREGULAR[w]
        return w[:-1] + "ieth" if w.endswith("y") else w + "th"
    return _last_word(cardinal(n), one)


def _plural(words: str) -> str:
    """"eighteen eighty" -> "eighteen eighties", "nineteen hundred" -> "nineteen hundreds"."""
    return _last_word(words, lambda w: w[:-1] + "ies" if w.endswith("y") else w + "s")


def number_words(token: str) -> str:
    """One written number (``1,234``, ``1465``, ``3.25``) in words; commas group thousands, a
    four-digit integer without commas in the year ranges of :func:`year` is read as a year."""
    whole, _, frac = token.partition(".")
    plain = whole.replace(",", "")
    n = int(plain)
    words = year(n) if ("," not in whole and len(plain) == 4) else cardinal(n)
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole, _, frac = m.group(2).partition(".")
    n = int(whole.replace(",", ""))
    out = f"{cardinal(n)} {one if n == 1 else many}"
    if frac and int(frac[:2].ljust(2, "0")):
        c = int(frac[:2].ljust(2, "0"))
        out += f" {cardinal(c)} {sub_one if c == 1 else sub_many}"
    return f" {out} "


def write_out_numbers(s: str) -> str:
    """Every written number in ``s`` in words (currency, percent, ordinals, decades, plain numbers),
    other text unchanged. Spaces are put around the words so "1465," keeps its comma apart."""
    s = _RE_CURRENCY.sub(_currency, s)
    s = _RE_PERCENT.sub(lambda m: f" {number_words(m.group(1))} percent ", s)
    s = _RE_ORDINAL.sub(lambda m: f" {ordinal(int(m.group(1)))} ", s)
    s = _RE_DECADE.sub(lambda m: f" {_plural(year(int(m.group(1))))} ", s)
    return _RE_NUMBER.sub(lambda m: f" {number_words(m.group(0))} ", s)


def normalize_spoken(s: str) -> str:
    """Spoken-form normalisation for judging a written-form ASR against spoken-form references.

    >>> normalize_spoken("In 1465, Mr. Smith paid $5 (21st of May, 1880s; 3.5%) & left.")
    'in fourteen sixty five mister smith paid five dollars twenty first of may eighteen eighties three point five percent and left'
    """
    s = unicodedata.normalize("NFKC", s.translate(_APOSTROPHE_TABLE))
    s = write_out_numbers(s).replace("&", " and ")
    tokens = normalize_text(s).split()
    return " ".join(_TITLES.get(t, t) for t in tokens if t not in _HESITATIONS)


@dataclass(frozen=True)
class Normalizer:
    """A named, versioned text normaliser (what a score records next to its numbers)."""

    name: str
    version: str
    description: str
    fn: Callable[[str], str]

    def __call__(self, s: str) -> str:
        return self.fn(s)

    def info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "description": self.description}


DEFAULT = Normalizer(NORMALIZER_NAME, NORMALIZER_VERSION, NORMALIZER_DESCRIPTION, normalize_text)
SPOKEN = Normalizer(SPOKEN_NAME, SPOKEN_VERSION, SPOKEN_DESCRIPTION, normalize_spoken)
NORMALIZERS = {"default": DEFAULT, "spoken": SPOKEN, DEFAULT.name: DEFAULT, SPOKEN.name: SPOKEN}


def get_normalizer(name: str | Normalizer | None) -> Normalizer:
    """``None``/``"default"`` -> :data:`DEFAULT`; ``"spoken"`` -> :data:`SPOKEN` (also by full name)."""
    if isinstance(name, Normalizer):
        return name
    if name is None:
        return DEFAULT
    if name not in NORMALIZERS:
        raise ValueError(f"unknown text normaliser {name!r}; known: {', '.join(sorted(NORMALIZERS))}")
    return NORMALIZERS[name]
