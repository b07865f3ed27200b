"""Band limitation by proper resampling: down to ``2 * cutoff`` Hz and back up to the original rate.

soxr's very-high-quality filter is used both ways (anti-aliasing on the way down, anti-imaging on
the way up), so the result keeps essentially nothing above the cut-off (stop-band attenuation far
beyond the -40 dB required) and the pass band ends at about 0.91 * cutoff.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from specenh.data.audio import resample
from specenh.degrade.registry import as_wave, check_wave, draw_value, fit_length, register


def lowpass_resample(wave: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Resample float [N] at ``sr`` to ``round(2 * cutoff_hz)`` Hz and back; float32 [N].

    A cut-off at or above ``sr / 2`` returns the input unchanged.
    """
    low_sr = int(round(2.0 * cutoff_hz))
    if low_sr >= sr:
        return as_wave(wave)
    if low_sr < 2:
        raise ValueError(f"cutoff must be at least 1 Hz, got {cutoff_hz}")
    down = resample(as_wave(wave), sr, low_sr)
    up = resample(down, low_sr, sr)
    return as_wave(fit_length(up, len(wave)))


@register("bandlimit")
def bandlimit(wave: np.ndarray, sr: int, rng: np.random.Generator, *,
              cutoff: float | Sequence[float] | None = None,
              cutoff_range: Sequence[float] | None = None) -> np.ndarray:
    """Keep only content below ``cutoff`` Hz (a value, a list to choose from, or ``cutoff_range``).

    wave: float32 [N] at ``sr`` Hz -> float32 [N].
    """
    check_wave(wave, sr)
    fc = draw_value(rng, "cutoff", cutoff, cutoff_range)
    if fc <= 0:
        raise ValueError(f"cutoff must be positive (Hz), got {fc}")
    return lowpass_resample(wave, sr, fc)
