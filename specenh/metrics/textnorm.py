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
"""
from __future__ import annotations

import unicodedata

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
