"""The voices of the synthetic corpus: espeak-ng English accents x voice variants, with their prosody.

A voice is an accent (en-us, en, en-gb-x-rp, ...) combined with an ordinary-sounding variant
(``+m3``, ``+f2``, ``+klatt4``, ...) and its own speaking rate, pitch and pitch range. The voice id
is the Kaldi speaker id (``v012``). :func:`build_voices` gives disjoint, gender-balanced voice lists
per set (no accent+variant pair in two sets).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from specenh.data.synthetic.constants import GENERATOR_VERSION

#: number of voices (speakers) per set
VOICES_PER_SET: dict[str, int] = {"train": 60, "dev": 8, "test": 12}
#: of which female-variant voices
FEMALE_VOICES_PER_SET: dict[str, int] = {"train": 24, "dev": 3, "test": 5}

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

