"""Phase reconstruction from a magnitude spectrogram, batched in torch.

Notation (Griffin & Lim 1984; Perraudin et al. 2013; Masuyama et al. 2020): ``S`` the target
magnitude [B, F, T]; ``P_A(X) = S * X / |X|`` the projection on spectrograms of magnitude ``S``
(amplitude projection); ``P_C(X) = STFT(iSTFT(X))`` the projection on consistent spectrograms.

* :func:`griffin_lim` (GLA): ``X <- P_C(P_A(X))``.
* :func:`fast_griffin_lim` (FGLA): ``T_n = P_C(P_A(C_{n-1}))``, ``C_n = T_n + alpha (T_n - T_{n-1})``;
  with ``alpha = 0`` it is GLA step for step (a test checks equality). This is the update
  ``librosa.griffinlim(momentum=alpha)`` performs (it writes ``T_n - alpha/(1+alpha) T_{n-1}``, the
  same direction, and only the direction survives ``P_A``).
* :func:`deep_griffin_lim` (DeGLI): ``Y = P_A(X)``, ``Z = P_C(Y)``, ``X <- Z - DNN(X, Y, Z, S)``, the
  DNN (:class:`DeGLIDenoiser`, shared over iterations) estimating the residual noise of ``Z``;
  :func:`train_degli` trains it on clean speech as in the paper (``X`` = clean spectrogram plus
  complex Gaussian noise, target the clean spectrogram, L1 loss).

Every function returns the waveform ``iSTFT(P_A(X))`` after the last iteration, so ``n_iter``
counts consistency projections (one STFT + one iSTFT each), as in librosa.

Per-utterance extents (for padded batches): ``frames`` [B] analysis frames of utterance b (frames
past it are zero and ignored); ``known`` [B, T] the frames whose magnitude is constrained (default:
all valid frames). Frames that are valid but not known keep their consistent value (they are free:
the vocoder uses one such frame at the end, which the ASR features drop). ``num_samples`` [B]:
signal length of utterance b, default ``(frames - 1) * hop``; the STFT grid must have
``1 + max(num_samples) // hop == T`` frames.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from specenh.features.logmel import FeatureConfig
from specenh.vocoder.framing import Framing, frame_mask, num_stft_frames, stft

log = logging.getLogger(__name__)

_TINY = 1e-12


def _abs(x: torch.Tensor) -> torch.Tensor:
    """|x| of a complex tensor (faster than ``x.abs()`` on CPU)."""
    return (x.real.square() + x.imag.square()).sqrt()


class _Geometry:
    """Masks, lengths and the cached STFT framing of one padded batch, shared by the projections."""

    def __init__(self, mag: torch.Tensor, cfg: FeatureConfig, frames: torch.Tensor | None,
                 known: torch.Tensor | None, num_samples: torch.Tensor | None):
        if mag.dim() != 3:
            raise ValueError(f"magnitude must be [B, F, T], got {tuple(mag.shape)}")
        b, f, t = mag.shape
        if f != cfg.n_fft // 2 + 1:
            raise ValueError(f"magnitude has {f} bins; n_fft={cfg.n_fft} needs {cfg.n_fft // 2 + 1}")
        dev = mag.device
        self.cfg = cfg
        self.frames = (torch.full((b,), t, dtype=torch.long, device=dev) if frames is None
                       else frames.to(dev).long())
        if int(self.frames.max()) > t or int(self.frames.min()) < 1:
            raise ValueError(f"frames must be in [1, {t}], got {self.frames.tolist()}")
        self.valid = frame_mask(self.frames, b, t, dev)  # [B, T]
        self.known = self.valid if known is None else (known.to(dev).bool() & self.valid)
        self.num_samples = ((self.frames - 1) * cfg.hop_length if num_samples is None
                            else num_samples.to(dev).long())
        if bool((num_stft_frames(self.num_samples, cfg) != self.frames).any()):
            raise ValueError("num_samples and frames disagree: need 1 + num_samples // hop == frames")
        self.n = (t - 1) * cfg.hop_length
        self.framing = Framing(cfg, b, self.n, self.num_samples, self.frames, device=dev, dtype=mag.dtype)
        # stored frame-major ([B, T, F] memory, as torch.stft returns): mixing layouts is ~4x slower
        self.mag = mag.masked_fill(~self.known[:, None, :], 0.0).transpose(1, 2).contiguous().transpose(1, 2)
        self.all_known = bool(self.known.all())
        # per-bin factor applied to X / |X|: S on known frames; free valid frames keep X (factor |X|)
        self._free = (self.valid & ~self.known)[:, None, :].to(mag.dtype).expand_as(self.mag)
        self._free = self._free.transpose(1, 2).contiguous().transpose(1, 2)

    def project_amplitude(self, x: torch.Tensor) -> torch.Tensor:
        """P_A on known frames (S X / |X|; 0 where X = 0, as librosa), identity on free valid
        frames, 0 on invalid frames (S is 0 there)."""
        a = _abs(x)
        factor = self.mag / (a + _TINY)
        if not self.all_known:
            factor = factor + self._free * (1.0 - factor)
        return x * factor

    def to_wave(self, x: torch.Tensor) -> torch.Tensor:
        return self.framing.istft(x)

    def to_spec(self, w: torch.Tensor) -> torch.Tensor:
        return self.framing.stft(w)

    def project_consistent(self, x: torch.Tensor) -> torch.Tensor:
        return self.framing.stft(self.framing.istft(x))


def initial_phase(mag: torch.Tensor, init: str | torch.Tensor = "zero", seed: int = 0,
                  frames: torch.Tensor | None = None) -> torch.Tensor:
    """Unit-modulus complex [B, F, T]: "zero" (all ones, librosa's ``init=None``), "random" (uniform
    phase; utterance b's draw depends only on ``seed`` and its own frame count, so batching does not
    change it), or a given complex/phase tensor (complex: its angle is used; real: radians)."""
    cdtype = torch.complex128 if mag.dtype == torch.float64 else torch.complex64
    if isinstance(init, torch.Tensor):
        ph = torch.angle(init) if init.is_complex() else init
        return torch.polar(torch.ones_like(mag), ph.to(mag.dtype).to(mag.device))
    if init == "zero":
        return torch.ones(mag.shape, dtype=cdtype, device=mag.device)
    if init == "random":
        b, f, t = mag.shape
        ph = torch.zeros(mag.shape, dtype=mag.dtype)
        for i in range(b):  # per utterance so the draw does not depend on the batch
            ti = t if frames is None else int(frames[i])
            g = torch.Generator().manual_seed(int(seed))
            ph[i, :, :ti] = (2 * math.pi) * torch.rand(f, ti, generator=g, dtype=mag.dtype)
        return torch.polar(torch.ones_like(mag), ph.to(mag.device))
    raise ValueError(f"unknown phase init {init!r}: zero | random | tensor")


def griffin_lim(mag: torch.Tensor, n_iter: int = 32, cfg: FeatureConfig | None = None, *,
                frames: torch.Tensor | None = None, known: torch.Tensor | None = None,
                num_samples: torch.Tensor | None = None, init: str | torch.Tensor = "zero",
                seed: int = 0) -> torch.Tensor:
    """Plain GLA. mag [B, F, T] -> waveform [B, N] (N = (T - 1) * hop unless num_samples is given)."""
    g = _Geometry(mag, cfg or FeatureConfig(), frames, known, num_samples)
    x = g.mag * initial_phase(g.mag, init, seed, g.frames)
    for _ in range(n_iter):
        x = g.project_consistent(g.project_amplitude(x))
    return g.to_wave(g.project_amplitude(x))


def fast_griffin_lim(mag: torch.Tensor, n_iter: int = 32, cfg: FeatureConfig | None = None, *,
                     momentum: float = 0.99, frames: torch.Tensor | None = None,
                     known: torch.Tensor | None = None, num_samples: torch.Tensor | None = None,
                     init: str | torch.Tensor = "zero", seed: int = 0) -> torch.Tensor:
    """FGLA (Perraudin et al. 2013) with inertia ``momentum`` (alpha); 0 gives GLA exactly."""
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0, got {momentum}")
    g = _Geometry(mag, cfg or FeatureConfig(), frames, known, num_samples)
    c = g.mag * initial_phase(g.mag, init, seed, g.frames)
    t_prev: torch.Tensor | None = None
    for _ in range(n_iter):
        t_new = g.project_consistent(g.project_amplitude(c))
        c = t_new if (t_prev is None or momentum == 0) else t_new + momentum * (t_new - t_prev)
        t_prev = t_new
    return g.to_wave(g.project_amplitude(c))


# ------------------------------------------------------------------------------------------ DeGLI
@dataclass
class DeGLIConfig:
    channels: int = 16
    layers: int = 3
    kernel: tuple[int, int] = (5, 3)  # (frequency, time)


def _compress(c: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """``c |c|^(power - 1)``: magnitude compressed, phase kept (tames the dynamic range of speech
    spectra for the network's input)."""
    return c * (_abs(c) + 1e-8).pow(power - 1.0)


class DeGLIDenoiser(nn.Module):
    """The DNN of Deep Griffin-Lim Iteration: amplitude-informed gated convolutions (small).

    Input: X, Y = P_A(X), Z = P_C(Y) (real and imaginary parts) and the target magnitude S, all
    divided by the utterance's RMS of S over its known bins (so the network sees a scale-free
    problem); output: the residual noise of Z (complex, re-scaled), subtracted by the caller.
    The last layer starts at zero, so an untrained denoiser makes DeGLI equal to GLA.
    """

    def __init__(self, channels: int = 16, layers: int = 3, kernel: Sequence[int] = (5, 3)):
        super().__init__()
        self.config = DeGLIConfig(channels, layers, tuple(int(k) for k in kernel))
        kf, kt = self.config.kernel
        pad = (kf // 2, kt // 2)
        blocks, c_in = [], 7
        for _ in range(layers):
            blocks.append(nn.Conv2d(c_in, 2 * channels, (kf, kt), padding=pad))  # GLU gate halves it
            c_in = channels
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(c_in, 2, (1, 1))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, mag: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        vm = valid[:, None, :].to(mag.dtype)
        scale = (mag.square() * vm).sum(dim=(1, 2)) / (vm.sum(dim=(1, 2)) * mag.shape[1]).clamp(min=1)
        scale = scale.sqrt().clamp(min=1e-8)[:, None, None]
        feats = [_compress(t / scale) for t in (x, y, z)]
        h = torch.stack([feats[0].real, feats[0].imag, feats[1].real, feats[1].imag, feats[2].real,
                         feats[2].imag, (mag / scale).sqrt()], dim=1).to(self.out.weight.dtype)  # [B, 7, F, T]
        m = vm[:, None].to(h.dtype)
        for conv in self.blocks:
            h = nn.functional.glu(conv(h * m), dim=1)
        r = self.out(h) * m
        return torch.complex(r[:, 0].to(mag.dtype), r[:, 1].to(mag.dtype)) * scale

    def save(self, path: str | Path) -> None:
        from specenh.utils.io import atomic_path

        with atomic_path(path) as tmp:
            torch.save({"kind": "degli", "config": asdict(self.config), "state_dict": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "DeGLIDenoiser":
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ck, dict) or ck.get("kind") != "degli":
            raise ValueError(f"{path} is not a DeGLI denoiser checkpoint")
        m = cls(**ck["config"])
        m.load_state_dict(ck["state_dict"])
        return m.eval()


def deep_griffin_lim(mag: torch.Tensor, denoiser: DeGLIDenoiser, n_iter: int = 32,
                     cfg: FeatureConfig | None = None, *, frames: torch.Tensor | None = None,
                     known: torch.Tensor | None = None, num_samples: torch.Tensor | None = None,
                     init: str | torch.Tensor = "zero", seed: int = 0) -> torch.Tensor:
    """DeGLI: ``X <- Z - DNN(X, Y, Z, S)`` with ``Y = P_A(X)``, ``Z = P_C(Y)``; waveform out."""
    g = _Geometry(mag, cfg or FeatureConfig(), frames, known, num_samples)
    x = g.mag * initial_phase(g.mag, init, seed, g.frames)
    for _ in range(n_iter):
        y = g.project_amplitude(x)
        z = g.project_consistent(y)
        x = (z - denoiser(x, y, z, g.mag, g.valid)) * g.valid[:, None, :]
    return g.to_wave(g.project_amplitude(x))


def degli_loss(net: DeGLIDenoiser, clean: torch.Tensor, cfg: FeatureConfig, snr_db: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """One DeGLI training loss on clean waveforms [B, N]: ``X* = STFT(clean)``, ``X = X* + N`` (complex
    Gaussian at ``snr_db`` [B] relative to the mean power of ``X*``), ``S = |X*|``, ``Y = P_A(X)``,
    ``Z = P_C(Y)``; mean of ``|Z - DNN(X, Y, Z, S) - X*|`` over real and imaginary parts, each
    utterance divided by its RMS magnitude (the network is scale-free, so is the loss)."""
    with torch.no_grad():
        target = stft(clean, cfg)
        mag = _abs(target)
        power = mag.square().mean(dim=(1, 2), keepdim=True).clamp(min=1e-20)
        sigma = (power / 10 ** (snr_db.view(-1, 1, 1).to(power.dtype) / 10) / 2).sqrt()
        noise = torch.complex(torch.randn(mag.shape, generator=generator),
                              torch.randn(mag.shape, generator=generator)).to(target.dtype) * sigma
        g = _Geometry(mag, cfg, None, None, None)
        x = target + noise
        y = g.project_amplitude(x)
        z = g.project_consistent(y)
    est = z - net(x, y, z, g.mag, g.valid)
    return torch.view_as_real((est - target) / power.sqrt()).abs().mean()


def train_degli(waves: Sequence[np.ndarray] | Sequence[torch.Tensor], cfg: FeatureConfig | None = None, *,
                steps: int = 200, batch_size: int = 4, crop_s: float = 1.0, lr: float = 1e-3,
                snr_db: tuple[float, float] = (-6.0, 12.0), denoiser: DeGLIDenoiser | None = None,
                seed: int = 0, log_every: int = 50) -> DeGLIDenoiser:
    """Train a DeGLI denoiser on clean speech waveforms (Masuyama et al. 2020): random crops of
    ``crop_s`` seconds, an SNR drawn uniformly from ``snr_db`` per crop, :func:`degli_loss`, Adam."""
    cfg = cfg or FeatureConfig()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = denoiser or DeGLIDenoiser()
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    crop = int(crop_s * cfg.sample_rate)
    ws = [np.asarray(w, dtype=np.float32) for w in waves]
    if not ws:
        raise ValueError("train_degli needs at least one waveform")
    for step in range(steps):
        batch = np.zeros((batch_size, crop), dtype=np.float32)
        for i in range(batch_size):
            w = ws[rng.integers(len(ws))]
            s = rng.integers(len(w) - crop + 1) if len(w) > crop else 0
            seg = w[s:s + crop]
            batch[i, :len(seg)] = seg
        snr = torch.from_numpy(rng.uniform(*snr_db, size=batch_size))
        loss = degli_loss(net, torch.from_numpy(batch), cfg, snr, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            log.info("degli step %d/%d: L1 %.4f", step + 1, steps, loss.item())
    return net.eval()


def spectral_convergence(mag: torch.Tensor, wave: torch.Tensor, cfg: FeatureConfig | None = None,
                         frames: torch.Tensor | None = None) -> torch.Tensor:
    """Per utterance ``||S - |STFT(x)| ||_F / ||S||_F`` over the first ``frames[b]`` frames. mag [B, F, T]."""
    cfg = cfg or FeatureConfig()
    spec = stft(wave, cfg).abs()
    t = min(spec.shape[-1], mag.shape[-1])
    spec, mag = spec[..., :t], mag[..., :t]
    m = frame_mask(frames, mag.shape[0], t, mag.device)[:, None, :].to(mag.dtype)
    err = ((mag - spec).square() * m).sum(dim=(1, 2)).sqrt()
    return err / (mag.square() * m).sum(dim=(1, 2)).sqrt().clamp(min=_TINY)


__all__ = ["griffin_lim", "fast_griffin_lim", "deep_griffin_lim", "DeGLIDenoiser", "train_degli", "degli_loss",
           "initial_phase", "spectral_convergence"]
