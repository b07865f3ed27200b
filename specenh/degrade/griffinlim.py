"""Phase-loss resynthesis: keep the STFT magnitude, discard the phase, recover a waveform with
(fast) Griffin-Lim.

STFT as everywhere in specenh (25 ms Hann, 10 ms hop, n_fft 512 at 16 kHz). The iteration is the
fast Griffin-Lim of Perraudin et al. (2013): ``t_n = P_C1(P_C2(c_{n-1}))``,
``c_n = t_n + momentum * (t_n - t_{n-1})``; ``momentum: 0`` gives classic Griffin-Lim. The initial
phase is random (from the utterance RNG) or zero.
"""
from __future__ import annotations

import numpy as np

from specenh.dsp.stft import StftConfig, istft_np, stft_np
from specenh.degrade.registry import as_wave, check_wave, register


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.abs(z), 1e-12)


def griffin_lim(mag: np.ndarray, cfg: StftConfig, length: int, rng: np.random.Generator, *,
                n_iter: int = 32, momentum: float = 0.99, init: str = "random") -> np.ndarray:
    """Waveform float64 [length] whose STFT magnitude approximates ``mag`` [F, T]."""
    if init == "random":
        c = mag * np.exp(2j * np.pi * rng.random(mag.shape))
    elif init == "zeros":
        c = mag.astype(np.complex128)
    else:
        raise ValueError(f"init must be 'random' or 'zeros', got {init!r}")
    t_prev = None
    for _ in range(int(n_iter)):
        t = stft_np(istft_np(mag * _unit(c), cfg, length), cfg)
        c = t if t_prev is None else t + momentum * (t - t_prev)
        t_prev = t
    return istft_np(mag * _unit(c), cfg, length)


@register("griffinlim")
def griffinlim(wave: np.ndarray, sr: int, rng: np.random.Generator, *, n_iter: int = 32,
               momentum: float = 0.99, init: str = "random") -> np.ndarray:
    """Resynthesise from the STFT magnitude. wave: float32 [N] at ``sr`` Hz -> float32 [N]."""
    check_wave(wave, sr)
    cfg = StftConfig.for_rate(sr)
    mag = np.abs(stft_np(wave, cfg))
    return as_wave(griffin_lim(mag, cfg, len(wave), rng, n_iter=n_iter, momentum=momentum, init=init))
