"""Telephone-style mu-law codec: resample to 8 kHz, 8-bit mu-law (mu = 255) encode and decode,
resample back to the original rate.

Samples are clipped to [-1, 1] before encoding, as a real codec would. Companding follows the
continuous mu-law curve ``sign(x) ln(1 + mu |x|) / ln(1 + mu)`` quantised uniformly to
``2 ** bits`` levels (not the segmented G.711 table; the noise behaviour is the same in kind).
"""
from __future__ import annotations

import math

import numpy as np

from specenh.data.audio import resample
from specenh.degrade.registry import as_wave, check_wave, fit_length, register


def mulaw_encode(x: np.ndarray, mu: int = 255, bits: int = 8) -> np.ndarray:
    """float [N] in [-1, 1] -> integer codes int32 [N] in [0, 2**bits - 1]."""
    levels = 2 ** bits
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return np.clip(np.floor((y + 1.0) / 2.0 * (levels - 1) + 0.5), 0, levels - 1).astype(np.int32)


def mulaw_decode(q: np.ndarray, mu: int = 255, bits: int = 8) -> np.ndarray:
    """Integer codes [N] -> float64 [N] in [-1, 1]."""
    levels = 2 ** bits
    y = 2.0 * np.asarray(q, dtype=np.float64) / (levels - 1) - 1.0
    return np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu


@register("codec")
def codec(wave: np.ndarray, sr: int, rng: np.random.Generator, *, kind: str = "mulaw",
          codec_sr: int = 8000, mu: int = 255, bits: int = 8) -> np.ndarray:
    """mu-law codec at ``codec_sr`` Hz. wave: float32 [N] at ``sr`` Hz -> float32 [N].

    Deterministic (``rng`` unused). With ``sr <= codec_sr`` no resampling is done.
    """
    check_wave(wave, sr)
    if kind != "mulaw":
        raise ValueError(f"codec kind must be 'mulaw', got {kind!r}")
    low = int(codec_sr) if int(codec_sr) < sr else sr
    x = resample(as_wave(wave), sr, low) if low != sr else as_wave(wave)
    x = mulaw_decode(mulaw_encode(x, mu, bits), mu, bits).astype(np.float32)
    if low != sr:
        x = resample(x, low, sr)
    return as_wave(fit_length(x, len(wave)))
