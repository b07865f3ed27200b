"""Small numpy STFT / inverse STFT used by the ``holes`` and ``griffinlim`` degradations.

Framing follows the ASR front-end: 25 ms periodic Hann window, 10 ms hop, FFT size the next power
of two of the window (400 / 160 / 512 at 16 kHz; scaled with the sample rate), frames centred on
``t * hop`` with zero padding of ``n_fft // 2`` on both sides. The inverse is a weighted
overlap-add normalised by the summed squared window, so ``istft(stft(x)) == x`` up to rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StftConfig:
    """Frame parameters in samples."""

    n_fft: int
    hop: int
    win_length: int

    @classmethod
    def for_rate(cls, sr: int, win_ms: float = 25.0, hop_ms: float = 10.0) -> "StftConfig":
        """25 ms / 10 ms framing at ``sr`` Hz; n_fft = next power of two >= window length."""
        win = max(2, int(round(win_ms * 1e-3 * sr)))
        hop = max(1, int(round(hop_ms * 1e-3 * sr)))
        n_fft = 1 << (win - 1).bit_length()
        return cls(n_fft=n_fft, hop=hop, win_length=win)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def window(self) -> np.ndarray:
        """Periodic Hann of ``win_length`` zero-padded (centred) to ``n_fft``: float64 [n_fft]."""
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.win_length) / self.win_length)
        left = (self.n_fft - self.win_length) // 2
        out = np.zeros(self.n_fft)
        out[left:left + self.win_length] = w
        return out


def stft(x: np.ndarray, cfg: StftConfig) -> np.ndarray:
    """Complex STFT of [N] samples -> complex128 [F, T] with F = n_fft/2+1, T = 1 + N // hop."""
    pad = cfg.n_fft // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (pad, pad))
    n_frames = cfg.n_frames(len(x))
    need = (n_frames - 1) * cfg.hop + cfg.n_fft
    if len(xp) < need:
        xp = np.pad(xp, (0, need - len(xp)))
    frames = np.lib.stride_tricks.sliding_window_view(xp, cfg.n_fft)[:: cfg.hop][:n_frames]
    return np.fft.rfft(frames * cfg.window(), axis=-1).T


def istft(spec: np.ndarray, cfg: StftConfig, length: int) -> np.ndarray:
    """Inverse of :func:`stft`: complex [F, T] -> float64 [length] (weighted overlap-add)."""
    n_frames = spec.shape[1]
    win = cfg.window()
    frames = np.fft.irfft(spec.T, n=cfg.n_fft, axis=-1) * win
    total = (n_frames - 1) * cfg.hop + cfg.n_fft
    out = np.zeros(total)
    norm = np.zeros(total)
    wsq = win * win
    for t in range(n_frames):
        s = t * cfg.hop
        out[s:s + cfg.n_fft] += frames[t]
        norm[s:s + cfg.n_fft] += wsq
    pad = cfg.n_fft // 2
    out = out[pad:pad + length]
    norm = norm[pad:pad + length]
    out = np.where(norm > 1e-10, out / np.maximum(norm, 1e-10), 0.0)
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out
