"""Time-frequency holes: random rectangles zeroed in the STFT, then inverse STFT.

STFT: 25 ms periodic Hann window, 10 ms hop, n_fft 512 at 16 kHz (scaled with the rate, see
:func:`specenh.dsp.stft.StftConfig.for_rate`). Rectangles of ``width_ms`` x ``height_hz`` (uniform in the given
ranges) are placed uniformly at random until the hole coverage — the fraction of STFT bins of the
[F, T] grid that are zeroed, overlaps counted once — reaches ``coverage``. The last rectangle is cut
short in time so that coverage overshoots the target by at most one of its columns (well under one
point). The boolean mask [F, T] (True = zeroed) is returned for saving. Its frames match the
ASR features' (T = 1 + N // hop, centred frames); its F = n_fft/2+1 axis is linear STFT bins, so a
log-mel consumer projects it through the mel filterbank.

Note: the resynthesised waveform's STFT is not exactly zero inside the holes (the zeroed
spectrogram is not a consistent STFT; overlap-add leaks a little energy back in); the mask records
what was removed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from specenh.dsp.stft import StftConfig, istft_np, stft_np
from specenh.degrade.registry import DegradeResult, as_wave, check_wave, register


def hole_mask(n_freq: int, n_frames: int, rng: np.random.Generator, *, coverage: float,
              width_frames: tuple[int, int], height_bins: tuple[int, int],
              max_rects: int = 100000) -> np.ndarray:
    """Boolean [n_freq, n_frames] mask of random rectangles covering ``coverage`` of the grid."""
    if not 0.0 <= coverage < 1.0:
        raise ValueError(f"coverage must be in [0, 1), got {coverage}")
    mask = np.zeros((n_freq, n_frames), dtype=bool)
    total = n_freq * n_frames
    target = int(np.ceil(coverage * total))
    covered = 0
    w_lo, w_hi = max(1, width_frames[0]), max(1, width_frames[1])
    h_lo, h_hi = max(1, height_bins[0]), max(1, height_bins[1])
    for _ in range(max_rects):
        if covered >= target:
            break
        w = min(n_frames, int(rng.integers(w_lo, w_hi + 1)))
        h = min(n_freq, int(rng.integers(h_lo, h_hi + 1)))
        t0 = int(rng.integers(0, n_frames - w + 1))
        f0 = int(rng.integers(0, n_freq - h + 1))
        new_per_col = (~mask[f0:f0 + h, t0:t0 + w]).sum(axis=0)
        need = target - covered
        cum = np.cumsum(new_per_col)
        if cum[-1] > need:  # cut the rectangle short so the target is reached, not overshot
            w = int(np.searchsorted(cum, need)) + 1
        mask[f0:f0 + h, t0:t0 + w] = True
        covered += int(cum[w - 1])
    else:
        raise RuntimeError(f"could not reach hole coverage {coverage} in {max_rects} rectangles")
    return mask


def holes_with_mask(wave: np.ndarray, sr: int, rng: np.random.Generator, *, coverage: float = 0.3,
                    width_ms: Sequence[float] = (30.0, 250.0),
                    height_hz: Sequence[float] = (250.0, 2000.0)) -> tuple[np.ndarray, np.ndarray]:
    """Zero random STFT rectangles. wave: float32 [N] -> (float32 [N], bool mask [F, T]).

    ``width_ms`` / ``height_hz``: [min, max] rectangle size in ms and Hz.
    """
    check_wave(wave, sr)
    cfg = StftConfig.for_rate(sr)
    spec = stft_np(wave, cfg)
    n_freq, n_frames = spec.shape
    hz_per_bin = sr / cfg.n_fft
    ms_per_frame = 1e3 * cfg.hop / sr
    mask = hole_mask(
        n_freq, n_frames, rng, coverage=float(coverage),
        width_frames=(int(round(width_ms[0] / ms_per_frame)), int(round(width_ms[1] / ms_per_frame))),
        height_bins=(int(round(height_hz[0] / hz_per_bin)), int(round(height_hz[1] / hz_per_bin))),
    )
    spec[mask] = 0.0
    return as_wave(istft_np(spec, cfg, len(wave))), mask


def holes(wave: np.ndarray, sr: int, rng: np.random.Generator, **params: object) -> np.ndarray:
    """Like :func:`holes_with_mask` but returns only the waveform float32 [N]."""
    return holes_with_mask(wave, sr, rng, **params)[0]  # type: ignore[arg-type]


@register("holes")
def holes_step(wave: np.ndarray, sr: int, rng: np.random.Generator, *, coverage: float = 0.3,
               width_ms: Sequence[float] = (30.0, 250.0),
               height_hz: Sequence[float] = (250.0, 2000.0)) -> DegradeResult:
    """Registry entry: the waveform and ``aux['holes_mask']`` (bool [F, T], True = zeroed)."""
    out, mask = holes_with_mask(wave, sr, rng, coverage=coverage, width_ms=width_ms, height_hz=height_hz)
    return DegradeResult(out, {"holes_mask": mask})
