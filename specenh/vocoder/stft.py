"""Batched STFT / inverse STFT in torch with the ASR's framing, masked per utterance.

Framing is the frozen ASR's (``FeatureConfig``): a symmetric Hann window of ``win_length`` samples
(400 at 16 kHz) zero-padded centrally to ``n_fft`` (512), hop ``hop_length`` (160), frames centred
on ``t * hop`` with ``n_fft // 2`` zeros of padding on both sides (``center=True``, constant pad).
A signal of ``N`` samples has ``1 + N // hop`` frames, exactly as ``torch.stft`` counts them.

Why not ``torch.istft``: it normalises the overlap-add by the squared-window envelope of *all* frames
of the padded batch, so the last ~40 samples of a short utterance in a batch would be divided by a
different envelope than the same utterance alone. :class:`Framing` builds each utterance's envelope
from its own frames only, so batched and one-at-a-time processing agree (to float rounding) whatever
a front-end does to the spectrum. It also caches the envelope, which matters inside Griffin-Lim.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from specenh.features.logmel import FeatureConfig

_ENV_EPS = 1e-11


def analysis_window(cfg: FeatureConfig, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ASR's window: symmetric Hann of ``win_length`` samples (not zero-padded)."""
    if cfg.window != "hann":
        raise ValueError(f"only the hann window is supported, got {cfg.window!r}")
    return torch.hann_window(cfg.win_length, periodic=False, device=device, dtype=dtype)


def padded_window(cfg: FeatureConfig, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The window zero-padded centrally to ``n_fft`` (what ``torch.stft`` applies)."""
    w = analysis_window(cfg, device, dtype)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(w, (left, cfg.n_fft - cfg.win_length - left))


def num_stft_frames(num_samples: torch.Tensor | int, cfg: FeatureConfig) -> torch.Tensor | int:
    """Frames of a centred STFT of ``num_samples`` samples: ``1 + N // hop``."""
    if isinstance(num_samples, torch.Tensor):
        return 1 + torch.div(num_samples, cfg.hop_length, rounding_mode="floor")
    return 1 + num_samples // cfg.hop_length


def frame_mask(frames: torch.Tensor | None, batch: int, n_frames: int, device) -> torch.Tensor:
    """Bool [B, T]: True for frames ``t < frames[b]`` (all True when ``frames`` is None)."""
    if frames is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    return torch.arange(n_frames, device=device)[None, :] < frames.to(device)[:, None]


def sample_mask(lengths: torch.Tensor | None, batch: int, n: int, device) -> torch.Tensor:
    """Bool [B, N]: True for samples ``n < lengths[b]``."""
    if lengths is None:
        return torch.ones(batch, n, dtype=torch.bool, device=device)
    return torch.arange(n, device=device)[None, :] < lengths.to(device)[:, None]


def overlap_add(seg: torch.Tensor, hop: int) -> torch.Tensor:
    """seg [B, T, L] frames -> [B, (T + ceil(L/hop) - 1) * hop] summed at offsets ``t * hop``."""
    b, t, length = seg.shape
    nb = math.ceil(length / hop)
    s = F.pad(seg, (0, nb * hop - length)).view(b, t, nb, hop)
    out = seg.new_zeros(b, t + nb - 1, hop)
    for j in range(nb):  # nb = 4 at 512 / 160: four shifted adds instead of F.fold
        out[:, j:j + t] += s[:, :, j]
    return out.reshape(b, -1)


class Framing:
    """STFT/iSTFT of one padded batch: ``batch`` utterances on a grid of ``n`` samples / ``t`` frames.

    ``num_samples`` [B] (default ``n`` for all): utterance b's length; its frames are
    ``t' < frames[b] = 1 + num_samples[b] // hop`` unless ``frames`` is given. :meth:`stft` zeroes
    samples past the length and frames past ``frames``; :meth:`istft` ignores frames past ``frames``
    (content and envelope), divides by the utterance's own squared-window envelope and zeroes
    samples past the length.
    """

    def __init__(self, cfg: FeatureConfig, batch: int, n: int, num_samples: torch.Tensor | None = None,
                 frames: torch.Tensor | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.cfg, self.batch, self.n = cfg, batch, int(n)
        self.t = int(num_stft_frames(self.n, cfg))
        self.device, self.dtype = torch.device(device), dtype
        self.window = analysis_window(cfg, device, dtype)
        self.win_padded = padded_window(cfg, device, dtype)
        if num_samples is not None:
            num_samples = num_samples.to(self.device).long()
            if int(num_samples.max()) > self.n:
                raise ValueError(f"num_samples {num_samples.tolist()} exceed the grid of {self.n} samples")
        if frames is None and num_samples is not None:
            frames = num_stft_frames(num_samples, cfg)
        self.num_samples, self.frames = num_samples, (None if frames is None else frames.to(self.device).long())
        full_s = num_samples is None or bool((num_samples == self.n).all())
        full_f = self.frames is None or bool((self.frames >= self.t).all())
        self.smask = None if full_s else sample_mask(num_samples, batch, self.n, self.device).to(dtype)
        self.fmask = None if full_f else frame_mask(self.frames, batch, self.t, self.device).to(dtype)
        fm = torch.ones(batch, self.t, device=self.device, dtype=dtype) if self.fmask is None else self.fmask
        env = overlap_add(fm[:, :, None] * self.win_padded.square()[None, None, :], cfg.hop_length)
        start = cfg.n_fft // 2
        env = env[:, start:start + self.n]
        if env.shape[1] < self.n:
            env = F.pad(env, (0, self.n - env.shape[1]))
        self.inv_env = torch.where(env > _ENV_EPS, 1.0 / env.clamp(min=_ENV_EPS), torch.zeros_like(env))
        if self.smask is not None:
            self.inv_env = self.inv_env * self.smask

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, n] -> complex [B, F, t]."""
        if x.shape != (self.batch, self.n):
            raise ValueError(f"expected a [{self.batch}, {self.n}] signal, got {tuple(x.shape)}")
        if self.smask is not None:
            x = x * self.smask
        cfg = self.cfg
        spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        if self.fmask is not None:
            spec = spec * self.fmask[:, None, :]
        return spec

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """complex [B, F, t] -> [B, n]."""
        if spec.shape[0] != self.batch or spec.shape[-1] != self.t or spec.shape[1] != self.cfg.n_fft // 2 + 1:
            raise ValueError(f"expected a [{self.batch}, {self.cfg.n_fft // 2 + 1}, {self.t}] spectrogram, "
                             f"got {tuple(spec.shape)}")
        seg = torch.fft.irfft(spec.transpose(1, 2), n=self.cfg.n_fft, dim=2) * self.win_padded  # [B, t, n_fft]
        if self.fmask is not None:
            seg = seg * self.fmask[:, :, None]
        y = overlap_add(seg, self.cfg.hop_length)
        start = self.cfg.n_fft // 2
        y = y[:, start:start + self.n]
        if y.shape[1] < self.n:
            y = F.pad(y, (0, self.n - y.shape[1]))
        return y * self.inv_env


def stft(x: torch.Tensor, cfg: FeatureConfig, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """x [B, N] real -> complex [B, F, 1 + N // hop]. Samples at or past ``lengths`` are zeroed
    first; frames past ``1 + lengths // hop`` are zeroed after."""
    if x.dim() != 2:
        raise ValueError(f"x must be [B, N], got {tuple(x.shape)}")
    return Framing(cfg, x.shape[0], x.shape[1], lengths, device=x.device, dtype=x.dtype).stft(x)


def istft(spec: torch.Tensor, cfg: FeatureConfig, frames: torch.Tensor | None = None,
          num_samples: int | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted overlap-add inverse of :func:`stft`.

    spec [B, F, T] complex; ``frames`` [B]: frames ``t >= frames[b]`` are ignored (neither their
    content nor their window enters utterance b's envelope); ``num_samples``: output length
    (default ``(T - 1) * hop``; ``1 + num_samples // hop`` must equal T); ``lengths`` [B]: samples at
    or past ``lengths[b]`` are zeroed. Returns float [B, num_samples].
    """
    if spec.dim() != 3:
        raise ValueError(f"spec must be [B, F, T], got {tuple(spec.shape)}")
    b, _, t = spec.shape
    n = cfg.hop_length * (t - 1) if num_samples is None else int(num_samples)
    if num_stft_frames(n, cfg) != t:
        raise ValueError(f"{t} frames do not match {n} samples (need 1 + N // hop == T)")
    fr = Framing(cfg, b, n, lengths, frames=frames, device=spec.device, dtype=spec.real.dtype)
    return fr.istft(spec)


__all__ = ["analysis_window", "padded_window", "num_stft_frames", "frame_mask", "sample_mask", "overlap_add",
           "Framing", "stft", "istft"]
