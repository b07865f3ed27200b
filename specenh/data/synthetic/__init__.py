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

Layout
------
- :mod:`~specenh.data.synthetic.constants`: the generator version and the set names;
- :mod:`~specenh.data.synthetic.words`: the lexicon (word lists, inflection);
- :mod:`~specenh.data.synthetic.grammar`: the sentence grammar, :func:`generate_sentences`, :func:`text_stats`;
- :mod:`~specenh.data.synthetic.voices`: accents, variants, :func:`build_voices`;
- :mod:`~specenh.data.synthetic.plan`: utterance specs (:func:`plan_set`);
- :mod:`~specenh.data.synthetic.espeak`: the espeak-ng ctypes binding;
- :mod:`~specenh.data.synthetic.waveform`: trimming, resampling, peak normalisation;
- :mod:`~specenh.data.synthetic.jobs`: the worker, the process pool, resuming (:func:`synthesize_set`);
- :mod:`~specenh.data.synthetic.corpus`: :func:`prepare_mini`, the entry point.
"""
from __future__ import annotations

from specenh.data.synthetic.constants import GENERATOR_VERSION, SETS
from specenh.data.synthetic.corpus import prepare_mini
from specenh.data.synthetic.espeak import Espeak, EspeakError, check_voices, espeak_paths
from specenh.data.synthetic.grammar import (MAX_WORDS, MIN_WORDS, NP, Sentence, SentenceGenerator, article,
                                            generate_sentences, text_stats)
from specenh.data.synthetic.jobs import synthesize_all, synthesize_set, synthesize_utterance
from specenh.data.synthetic.plan import UttSpec, plan_set
from specenh.data.synthetic.voices import (ACCENTS, FEMALE_VOICES_PER_SET, VARIANTS_F, VARIANTS_M, VOICES_PER_SET,
                                           Voice, build_voices)
from specenh.data.synthetic.waveform import MARGIN_S, PEAK_DBFS, postprocess, trim_silence
from specenh.data.synthetic.words import Noun, Verb, number_words, ordinal_words, pluralize, verb

__all__ = [
    "GENERATOR_VERSION", "SETS", "VOICES_PER_SET", "FEMALE_VOICES_PER_SET", "MIN_WORDS", "MAX_WORDS",
    "Noun", "Verb", "pluralize", "verb", "number_words", "ordinal_words",
    "NP", "article", "SentenceGenerator", "Sentence", "generate_sentences", "text_stats",
    "ACCENTS", "VARIANTS_M", "VARIANTS_F", "Voice", "build_voices", "UttSpec", "plan_set",
    "EspeakError", "Espeak", "espeak_paths", "check_voices",
    "MARGIN_S", "PEAK_DBFS", "trim_silence", "postprocess",
    "synthesize_utterance", "synthesize_all", "synthesize_set", "prepare_mini",
]
