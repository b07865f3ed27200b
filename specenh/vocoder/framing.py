"""Batched STFT / inverse STFT in torch with the ASR's framing, masked per utterance.

The transform is :mod:`specenh.dsp.stft` (the one STFT of the package); this module binds it to the
frozen ASR's framing (``FeatureConfig``): a symmetric Hann window of ``win_length`` samples (400 at
16 kHz) zero-padded centrally to ``n_fft`` (512), hop ``hop_length`` (160), frames centred on
``t * hop`` with ``n_fft // 2`` zeros of padding on both sides (``center=True``, constant pad).
A signal of ``N`` samples has ``1 + N // hop`` frames, exactly as ``torch.stft`` counts them.

Why not ``torch.istft``: it normalises the overlap-add by the squared-window envelope of *all* frames
of the padded batch, so the last ~40 samples of a short utterance in a batch would be divided by a
different envelope than the same utterance alone. :class:`Framing` builds each utterance's envelope
from its own frames only, so batched and one-at-a-time processing agree (to float rounding) whatever
a front-end does to the spectrum. It also caches the envelope, which matters inside Griffin-Lim.
"""
from __future__ import annotations

import torch

from specenh.dsp import stft as _dsp
from specenh.dsp.stft import SYMMETRIC, StftConfig, frame_mask, hann_torch, overlap_add, sample_mask
from specenh.features.logmel import FeatureConfig


def framing_of(cfg: FeatureConfig) -> StftConfig:
    """The ASR's framing as a :class:`specenh.dsp.stft.StftConfig` (symmetric Hann)."""
    if cfg.window != "hann":
        raise ValueError(f"only the hann window is supported, got {cfg.window!r}")
    return StftConfig(n_fft=cfg.n_fft, hop=cfg.hop_length, win_length=cfg.win_length, window=SYMMETRIC)


def analysis_window(cfg: FeatureConfig, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ASR's window: symmetric Hann of ``win_length`` samples (not zero-padded)."""
    return hann_torch(framing_of(cfg), padded=False, device=device, dtype=dtype)


def padded_window(cfg: FeatureConfig, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The window zero-padded centrally to ``n_fft`` (what ``torch.stft`` applies)."""
    return hann_torch(framing_of(cfg), device=device, dtype=dtype)


def num_stft_frames(num_samples: torch.Tensor | int, cfg: FeatureConfig) -> torch.Tensor | int:
    """Frames of a centred STFT of ``num_samples`` samples: ``1 + N // hop``."""
    return _dsp.num_stft_frames(num_samples, framing_of(cfg))


class Framing(_dsp.Framing):
    """:class:`specenh.dsp.stft.Framing` with the ASR's framing: ``cfg`` is a ``FeatureConfig``
    (kept as ``feature_cfg``; ``self.cfg`` is its :class:`~specenh.dsp.stft.StftConfig`)."""

    def __init__(self, cfg: FeatureConfig, batch: int, n: int, num_samples: torch.Tensor | None = None,
                 frames: torch.Tensor | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        super().__init__(framing_of(cfg), batch, n, num_samples, frames, device=device, dtype=dtype)
        self.feature_cfg = cfg


def stft(x: torch.Tensor, cfg: FeatureConfig, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """x [B, N] real -> complex [B, F, 1 + N // hop]. Samples at or past ``lengths`` are zeroed
    first; frames past ``1 + lengths // hop`` are zeroed after."""
    return _dsp.stft_torch(x, framing_of(cfg), lengths)


def istft(spec: torch.Tensor, cfg: FeatureConfig, frames: torch.Tensor | None = None,
          num_samples: int | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted overlap-add inverse of :func:`stft` (see :func:`specenh.dsp.stft.istft_torch`).

    spec [B, F, T] complex; ``frames`` [B]: frames ``t >= frames[b]`` are ignored (neither their
    content nor their window enters utterance b's envelope); ``num_samples``: output length
    (default ``(T - 1) * hop``; ``1 + num_samples // hop`` must equal T); ``lengths`` [B]: samples at
    or past ``lengths[b]`` are zeroed. Returns float [B, num_samples].
    """
    return _dsp.istft_torch(spec, framing_of(cfg), frames, num_samples, lengths)


__all__ = ["framing_of", "analysis_window", "padded_window", "num_stft_frames", "frame_mask", "sample_mask",
           "overlap_add", "Framing", "stft", "istft"]
