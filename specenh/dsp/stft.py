"""One STFT for specenh: Hann window, centred frames with zero padding, weighted overlap-add inverse.

Framing (:class:`StftConfig`): a Hann window of ``win_length`` samples, *periodic*
(``0.5 - 0.5 cos(2 pi n / L)``, the DFT-even window) or *symmetric* (``... / (L - 1)``, the ASR's),
zero-padded centrally to ``n_fft``; hop ``hop``; frames centred on ``t * hop`` with ``n_fft // 2`` zeros
of padding on both sides, so a signal of ``N`` samples has ``1 + N // hop`` frames (exactly as
``torch.stft(center=True, pad_mode="constant")`` counts them). The inverse is the weighted overlap-add
normalised by the summed squared window, so ``istft(stft(x)) == x`` up to rounding wherever that
envelope is non-zero.

Entry points
------------
- numpy, float64, one signal: :func:`stft_np`, :func:`istft_np`;
- torch, batched with per-utterance lengths: :class:`Framing`, :func:`stft_torch`, :func:`istft_torch`.
  The inverse divides each utterance by the envelope of its *own* frames, so an utterance gives the
  same result alone or padded in a batch (``torch.istft`` would use the envelope of the whole padded
  batch: the last ~40 samples of a short utterance would differ); :class:`Framing` computes that
  envelope once, which matters inside Griffin-Lim.

torch is imported inside the torch entry points only: the numpy path (degradation workers, metrics,
the CLI) never loads it.

The callers and their settings (unchanged when they moved here; ``tests/test_stft.py`` checks the
outputs against the former implementations):

- degradations (``holes``, ``griffinlim``) and the LSD metric: numpy, periodic Hann,
  :meth:`StftConfig.for_rate` (25 ms / 10 ms, ``n_fft`` the next power of two: 400 / 160 / 512 at
  16 kHz), envelope floor 1e-10;
- vocoder and classical front-ends (through :mod:`specenh.vocoder.framing`, the ASR's ``FeatureConfig``):
  torch, symmetric Hann built in the signal's dtype, reciprocal envelope with floor :data:`ENV_EPS`;
- the ``mask`` front-end: torch, periodic Hann built in float64 and cast to float32 (a buffer of the
  model), 25 ms / 10 ms / 512, dividing by the envelope (``divide=True``) with floor 1e-8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

PERIODIC = "periodic"
SYMMETRIC = "symmetric"
WINDOWS: tuple[str, ...] = (PERIODIC, SYMMETRIC)
#: envelope floor of the numpy inverse: where the summed squared window is below it the output is 0
ENV_EPS_NP = 1e-10
#: default envelope floor of the torch inverse
ENV_EPS = 1e-11


@dataclass(frozen=True)
class StftConfig:
    """Frame parameters in samples and the kind of Hann window (``"periodic"`` or ``"symmetric"``)."""

    n_fft: int
    hop: int
    win_length: int
    window: str = PERIODIC

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {self.window!r}")
        if not 1 <= self.win_length <= self.n_fft:
            raise ValueError(f"window length {self.win_length} must be in [1, n_fft = {self.n_fft}]")
        if self.hop < 1:
            raise ValueError(f"hop must be >= 1, got {self.hop}")

    @classmethod
    def for_rate(cls, sr: int, win_ms: float = 25.0, hop_ms: float = 10.0, window: str = PERIODIC) -> StftConfig:
        """``win_ms`` / ``hop_ms`` framing at ``sr`` Hz; n_fft = the next power of two >= the window length."""
        win = max(2, int(round(win_ms * 1e-3 * sr)))
        hop = max(1, int(round(hop_ms * 1e-3 * sr)))
        n_fft = 1 << (win - 1).bit_length()
        return cls(n_fft=n_fft, hop=hop, win_length=win, window=window)

    @property
    def periodic(self) -> bool:
        return self.window == PERIODIC

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def win_offset(self) -> int:
        """Zeros before the window inside the ``n_fft`` frame (central padding)."""
        return (self.n_fft - self.win_length) // 2

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop


def num_stft_frames(num_samples, cfg: StftConfig):
    """Frames of a centred STFT of ``num_samples`` samples (int or integer tensor): ``1 + N // hop``."""
    if isinstance(num_samples, (int, np.integer)):
        return 1 + num_samples // cfg.hop
    import torch

    if isinstance(num_samples, torch.Tensor):
        return 1 + torch.div(num_samples, cfg.hop, rounding_mode="floor")
    return 1 + num_samples // cfg.hop


# ===========================================================================
# numpy
# ===========================================================================

def hann_np(win_length: int, periodic: bool) -> np.ndarray:
    """Hann window of ``win_length`` samples, float64: period ``L`` (periodic) or ``L - 1`` (symmetric)."""
    denom = win_length if periodic else win_length - 1
    if denom == 0:  # a one-sample symmetric window (torch.hann_window gives [1.] too)
        return np.ones(win_length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / denom)


def window_np(cfg: StftConfig) -> np.ndarray:
    """The window zero-padded centrally to ``n_fft``: float64 [n_fft]."""
    out = np.zeros(cfg.n_fft)
    out[cfg.win_offset:cfg.win_offset + cfg.win_length] = hann_np(cfg.win_length, cfg.periodic)
    return out


def stft_np(x: np.ndarray, cfg: StftConfig) -> np.ndarray:
    """Complex STFT of [N] samples -> complex128 [F, T] with F = n_fft/2+1, T = 1 + N // hop."""
    pad = cfg.n_fft // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (pad, pad))
    n_frames = cfg.n_frames(len(x))
    need = (n_frames - 1) * cfg.hop + cfg.n_fft
    if len(xp) < need:
        xp = np.pad(xp, (0, need - len(xp)))
    frames = np.lib.stride_tricks.sliding_window_view(xp, cfg.n_fft)[:: cfg.hop][:n_frames]
    return np.fft.rfft(frames * window_np(cfg), axis=-1).T


def istft_np(spec: np.ndarray, cfg: StftConfig, length: int) -> np.ndarray:
    """Inverse of :func:`stft_np`: complex [F, T] -> float64 [length] (weighted overlap-add)."""
    n_frames = spec.shape[1]
    win = window_np(cfg)
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
    out = np.where(norm > ENV_EPS_NP, out / np.maximum(norm, ENV_EPS_NP), 0.0)
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


# ===========================================================================
# torch
# ===========================================================================

def hann_torch(cfg: StftConfig, *, padded: bool = True, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
    """The window by ``torch.hann_window``, computed in ``dtype`` (default float32) on ``device``:
    [n_fft] zero-padded centrally (``padded``) or [win_length]."""
    import torch
    import torch.nn.functional as F

    w = torch.hann_window(cfg.win_length, periodic=cfg.periodic, device=device,
                          dtype=torch.float32 if dtype is None else dtype)
    if padded:
        w = F.pad(w, (cfg.win_offset, cfg.n_fft - cfg.win_length - cfg.win_offset))
    return w


def frame_mask(frames: torch.Tensor | None, batch: int, n_frames: int, device) -> torch.Tensor:
    """Bool [B, T]: True for frames ``t < frames[b]`` (all True when ``frames`` is None)."""
    import torch

    if frames is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    return torch.arange(n_frames, device=device)[None, :] < frames.to(device)[:, None]


def sample_mask(lengths: torch.Tensor | None, batch: int, n: int, device) -> torch.Tensor:
    """Bool [B, N]: True for samples ``n < lengths[b]``."""
    import torch

    if lengths is None:
        return torch.ones(batch, n, dtype=torch.bool, device=device)
    return torch.arange(n, device=device)[None, :] < lengths.to(device)[:, None]


def overlap_add(seg: torch.Tensor, hop: int) -> torch.Tensor:
    """seg [B, T, L] frames -> [B, (T + ceil(L/hop) - 1) * hop] summed at offsets ``t * hop``.

    Each output sample sums its frames from the latest to the earliest (the order of ``F.fold`` on
    the CPU, so the two agree bit for bit there)."""
    import torch.nn.functional as F

    b, t, length = seg.shape
    nb = -(-length // hop)
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
    (content and envelope), normalises by the utterance's own squared-window envelope (0 where it
    is not above ``eps``) and zeroes samples past the length.

    ``window``: a precomputed padded window [n_fft] (e.g. a model's buffer) instead of
    :func:`hann_torch` in ``dtype`` on ``device``. ``divide``: divide by the envelope instead of
    multiplying by its cached reciprocal (the two differ in the last bit; the ``mask`` front-end
    divides, the vocoder multiplies).
    """

    def __init__(self, cfg: StftConfig, batch: int, n: int, num_samples: torch.Tensor | None = None,
                 frames: torch.Tensor | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, *, window: torch.Tensor | None = None,
                 eps: float = ENV_EPS, divide: bool = False):
        import torch

        dtype = torch.float32 if dtype is None else dtype
        self.cfg, self.batch, self.n = cfg, batch, int(n)
        self.t = int(num_stft_frames(self.n, cfg))
        self.device, self.dtype = torch.device(device), dtype
        if window is None:
            self.window = hann_torch(cfg, padded=False, device=device, dtype=dtype)  # [win_length]
            self.win_padded = hann_torch(cfg, device=device, dtype=dtype)            # [n_fft]
        else:
            if tuple(window.shape) != (cfg.n_fft,):
                raise ValueError(f"window must be padded to n_fft = {cfg.n_fft}, got {tuple(window.shape)}")
            self.win_padded = window.to(device=self.device, dtype=dtype)
            self.window = self.win_padded[cfg.win_offset:cfg.win_offset + cfg.win_length]
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
        self.eps, self.divide = float(eps), bool(divide)
        self._env: torch.Tensor | None = None
        self._inv_env: torch.Tensor | None = None

    @property
    def env(self) -> torch.Tensor:
        """[B, n]: the summed squared window of each utterance's own frames (computed once)."""
        if self._env is None:
            import torch
            import torch.nn.functional as F

            fm = torch.ones(self.batch, self.t, device=self.device, dtype=self.dtype) if self.fmask is None \
                else self.fmask
            env = overlap_add(fm[:, :, None] * self.win_padded.square()[None, None, :], self.cfg.hop)
            start = self.cfg.n_fft // 2
            env = env[:, start:start + self.n]
            if env.shape[1] < self.n:
                env = F.pad(env, (0, self.n - env.shape[1]))
            self._env = env
        return self._env

    @property
    def inv_env(self) -> torch.Tensor:
        """[B, n]: ``1 / env`` where ``env > eps`` (else 0), zero past each utterance's length."""
        if self._inv_env is None:
            import torch

            env = self.env
            inv = torch.where(env > self.eps, 1.0 / env.clamp(min=self.eps), torch.zeros_like(env))
            self._inv_env = inv if self.smask is None else inv * self.smask
        return self._inv_env

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, n] -> complex [B, F, t]."""
        import torch

        if x.shape != (self.batch, self.n):
            raise ValueError(f"expected a [{self.batch}, {self.n}] signal, got {tuple(x.shape)}")
        if self.smask is not None:
            x = x * self.smask
        cfg = self.cfg
        spec = torch.stft(x, n_fft=cfg.n_fft, hop_length=cfg.hop, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        if self.fmask is not None:
            spec = spec * self.fmask[:, None, :]
        return spec

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """complex [B, F, t] -> [B, n]."""
        import torch
        import torch.nn.functional as F

        n_freq = self.cfg.n_freq
        if spec.shape[0] != self.batch or spec.shape[-1] != self.t or spec.shape[1] != n_freq:
            raise ValueError(f"expected a [{self.batch}, {n_freq}, {self.t}] spectrogram, got {tuple(spec.shape)}")
        seg = torch.fft.irfft(spec.transpose(1, 2), n=self.cfg.n_fft, dim=2) * self.win_padded  # [B, t, n_fft]
        if self.fmask is not None:
            seg = seg * self.fmask[:, :, None]
        y = overlap_add(seg, self.cfg.hop)
        start = self.cfg.n_fft // 2
        y = y[:, start:start + self.n]
        if y.shape[1] < self.n:
            y = F.pad(y, (0, self.n - y.shape[1]))
        if not self.divide:
            return y * self.inv_env
        env = self.env
        y = torch.where(env > self.eps, y / env.clamp(min=self.eps), torch.zeros_like(y))
        return y if self.smask is None else y * self.smask


def stft_torch(x: torch.Tensor, cfg: StftConfig, lengths: torch.Tensor | None = None, *,
               window: torch.Tensor | None = None) -> torch.Tensor:
    """x [B, N] real -> complex [B, F, 1 + N // hop]. Samples at or past ``lengths`` are zeroed
    first; frames past ``1 + lengths // hop`` are zeroed after. ``window``: see :class:`Framing`."""
    if x.dim() != 2:
        raise ValueError(f"x must be [B, N], got {tuple(x.shape)}")
    return Framing(cfg, x.shape[0], x.shape[1], lengths, device=x.device, dtype=x.dtype, window=window).stft(x)


def istft_torch(spec: torch.Tensor, cfg: StftConfig, frames: torch.Tensor | None = None,
                num_samples: int | None = None, lengths: torch.Tensor | None = None, *,
                window: torch.Tensor | None = None, eps: float = ENV_EPS, divide: bool = False) -> torch.Tensor:
    """Weighted overlap-add inverse of :func:`stft_torch`.

    spec [B, F, T] complex; ``frames`` [B]: frames ``t >= frames[b]`` are ignored (neither their
    content nor their window enters utterance b's envelope); ``num_samples``: output length
    (default ``(T - 1) * hop``; ``1 + num_samples // hop`` must equal T); ``lengths`` [B]: samples at
    or past ``lengths[b]`` are zeroed. ``window``, ``eps``, ``divide``: see :class:`Framing`.
    Returns float [B, num_samples].
    """
    if spec.dim() != 3:
        raise ValueError(f"spec must be [B, F, T], got {tuple(spec.shape)}")
    b, _, t = spec.shape
    n = cfg.hop * (t - 1) if num_samples is None else int(num_samples)
    if num_stft_frames(n, cfg) != t:
        raise ValueError(f"{t} frames do not match {n} samples (need 1 + N // hop == T)")
    fr = Framing(cfg, b, n, lengths, frames=frames, device=spec.device, dtype=spec.real.dtype, window=window,
                 eps=eps, divide=divide)
    return fr.istft(spec)


__all__ = ["PERIODIC", "SYMMETRIC", "WINDOWS", "ENV_EPS", "ENV_EPS_NP", "StftConfig", "num_stft_frames",
           "hann_np", "window_np", "stft_np", "istft_np",
           "hann_torch", "frame_mask", "sample_mask", "overlap_add", "Framing", "stft_torch", "istft_torch"]
