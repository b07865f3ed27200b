"""Reverberation with a synthetic room impulse response (RIR).

The RIR [L] is: a unit direct path at lag 0 (so the reverberant signal stays time-aligned with the
clean one), ``n_early`` sparse early reflections at 2-50 ms with random signs, and a late tail of
Gaussian noise under the exponential envelope ``exp(-3 ln(10) t / rt60)`` (-60 dB at ``rt60``)
starting at 5 ms. High frequencies decay faster in real rooms: with ``damping`` the tail is built
from six bands (<250 Hz ... >4 kHz) whose RT60 is 1.1 ... 0.6 times the nominal ``rt60`` (which
holds for the 500-1000 Hz band). The early + late part is scaled to the
direct-to-reverberant ratio ``drr`` (dB). After convolution (scipy.signal.fftconvolve) the output is
cut to the input length and scaled to the input's RMS level.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from specenh.degrade.registry import as_wave, check_wave, draw_value, power, register


# octave-ish bands (Hz) and their RT60 relative to the nominal (mid-frequency) RT60
_BAND_EDGES = (0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, math.inf)
_BAND_RT60_RATIO = (1.1, 1.05, 1.0, 0.9, 0.75, 0.6)


def synth_rir(sr: int, rt60: float, drr_db: float, rng: np.random.Generator, *, n_early: int = 8,
              damping: bool = True) -> np.ndarray:
    """Synthetic RIR float64 [ceil(sr * (1.1 * rt60 + 0.05))] with the direct path at index 0."""
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive (s), got {rt60}")
    n = int(math.ceil(sr * (rt60 * max(_BAND_RT60_RATIO) + 0.05)))
    t = np.arange(n) / sr
    env = np.exp(-3.0 * math.log(10.0) * t / rt60)
    white = np.fft.rfft(rng.standard_normal(n))
    if damping:
        # frequency-dependent decay: split the noise into bands, each under its own envelope
        f = np.fft.rfftfreq(n, 1.0 / sr)
        tail = np.zeros(n)
        for lo, hi, ratio in zip(_BAND_EDGES[:-1], _BAND_EDGES[1:], _BAND_RT60_RATIO):
            sel = (f >= lo) & (f < hi)
            if not sel.any():
                continue
            band = np.fft.irfft(np.where(sel, white, 0.0), n=n)
            tail += band * np.exp(-3.0 * math.log(10.0) * t / (rt60 * ratio))
    else:
        tail = np.fft.irfft(white, n=n) * env
    onset = int(0.005 * sr)
    ramp = max(1, int(0.002 * sr))
    tail *= np.clip((np.arange(n) - onset) / ramp, 0.0, 1.0)
    rev = tail
    for _ in range(int(n_early)):
        d = int(rng.uniform(0.002, 0.05) * sr)
        if 0 < d < n:
            rev[d] += rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.8) * env[d] * 4.0
    e_rev = float(np.sum(rev ** 2))
    rev *= math.sqrt(10.0 ** (-drr_db / 10.0) / e_rev)
    h = rev
    h[0] = 1.0
    return h


@register("reverb")
def reverb(wave: np.ndarray, sr: int, rng: np.random.Generator, *,
           rt60: float | Sequence[float] | None = None, rt60_range: Sequence[float] | None = None,
           drr: float | Sequence[float] | None = None, drr_range: Sequence[float] | None = (0.0, 8.0),
           n_early: int = 8, damping: bool = True) -> np.ndarray:
    """Convolve with a synthetic RIR. RT60 in seconds (list ``rt60`` or ``rt60_range``), DRR in dB
    (list ``drr`` or ``drr_range``, default [0, 8]). wave: float32 [N] -> float32 [N], same RMS."""
    check_wave(wave, sr)
    from scipy.signal import fftconvolve

    t60 = draw_value(rng, "rt60", rt60, rt60_range)
    drr_db = draw_value(rng, "drr", drr, None if drr is not None else drr_range)
    h = synth_rir(sr, t60, drr_db, rng, n_early=n_early, damping=damping)
    y = fftconvolve(wave.astype(np.float64), h)[: len(wave)]
    p_in, p_out = power(wave), power(y)
    if p_out > 0:
        y *= math.sqrt(p_in / p_out)
    return as_wave(y)
