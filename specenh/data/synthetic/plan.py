"""The utterance plan of the synthetic corpus: which voice says which sentence, with what prosody.

An :class:`UttSpec` holds everything that determines one utterance's audio (text, voice, jittered
rate and pitch, the random seed derived from the utterance id, the output path).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from specenh.data.synthetic.constants import GENERATOR_VERSION
from specenh.data.synthetic.grammar import Sentence
from specenh.data.synthetic.voices import Voice


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
