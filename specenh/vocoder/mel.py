"""Log-mel -> linear STFT magnitude (the first stage of mel-spectrogram inversion, done in torch).

The ASR's features are ``log(M |X|^p + g)`` with ``M`` the [D, F] slaney mel filterbank, ``X`` the
STFT of the pre-emphasised signal, ``p = mag_power`` (2) and ``g = 2^-24`` the log guard. Undoing the
log and the guard gives the mel power ``m = M P`` (``P = |X|^p``), an under-determined system (80
equations, 257 unknowns per frame). Two solutions:

* ``pinv``: ``P = max(M^+ m, 0)`` with ``M^+`` the Moore-Penrose pseudo-inverse (minimum-norm
  least squares, then clamped to the non-negative orthant);
* ``nnls``: non-negative least squares ``min_{P >= 0} ||M P - m||^2`` per frame, solved batched by
  accelerated projected gradient (FISTA) started from the ``pinv`` solution. :func:`nnls_scipy`
  is the exact active-set reference (scipy, one frame at a time) used by the tests.

``|X| = P^(1/p)``. An optional :class:`MelRefiner` (small conv net, the "refinement" of the pseudo-inverse estimate) then
corrects the log-magnitude; :func:`train_refiner` trains it on clean speech.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from specenh.features.logmel import FeatureConfig, mel_filterbank

log = logging.getLogger(__name__)

_LOG_EPS = 1e-5  # magnitude floor inside the refiner's log


@lru_cache(maxsize=8)
def _fb_and_pinv(cfg: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor, float]:
    fb = mel_filterbank(cfg).double()
    pinv = torch.linalg.pinv(fb)
    lip = float(torch.linalg.matrix_norm(fb, ord=2)) ** 2  # Lipschitz constant of the NNLS gradient
    return fb.float(), pinv.float(), lip


def logmel_to_melpower(feats: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Undo ``log(. + guard)`` (or ``log(max(., guard))``; Whisper's ``(log10(.) + 4) / 4``): mel power
    [B, D, T], >= 0."""
    if cfg.flavour == "whisper":
        return torch.pow(10.0, 4.0 * feats - 4.0)
    if cfg.log_zero_guard_type == "add":
        return (feats.exp() - cfg.log_zero_guard_value).clamp(min=0.0)
    if cfg.log_zero_guard_type == "clamp":
        return feats.exp()
    raise ValueError(f"unknown log_zero_guard_type {cfg.log_zero_guard_type!r}")


def mel_to_power(mel: torch.Tensor, cfg: FeatureConfig, method: str = "pinv", n_iter: int = 100) -> torch.Tensor:
    """Mel power [B, D, T] -> linear ``|X|^p`` [B, F, T] (>= 0) by ``pinv`` or ``nnls``."""
    fb, pinv, lip = _fb_and_pinv(cfg)
    fb, pinv = fb.to(mel.device, mel.dtype), pinv.to(mel.device, mel.dtype)
    p = torch.matmul(pinv, mel).clamp(min=0.0)
    if method == "pinv":
        return p
    if method != "nnls":
        raise ValueError(f"unknown mel inversion {method!r}: pinv | nnls")
    # FISTA on 0.5 ||M P - m||^2, P >= 0; every frame is an independent problem, solved together.
    step = 1.0 / lip
    mt_m = torch.matmul(fb.T, mel)
    y, p_prev, t_k = p, p, 1.0
    for _ in range(n_iter):
        grad = torch.matmul(fb.T, torch.matmul(fb, y)) - mt_m
        p_new = (y - step * grad).clamp(min=0.0)
        t_next = (1.0 + (1.0 + 4.0 * t_k * t_k) ** 0.5) / 2.0
        y = p_new + ((t_k - 1.0) / t_next) * (p_new - p_prev)
        p_prev, t_k = p_new, t_next
    return p_prev


def nnls_scipy(mel: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Exact NNLS per frame with ``scipy.optimize.nnls`` (slow; reference). mel [D, T] -> [F, T]."""
    from scipy.optimize import nnls

    fb = mel_filterbank(cfg).double().numpy()
    return np.stack([nnls(fb, mel[:, t].astype(np.float64))[0] for t in range(mel.shape[1])], axis=1)


def logmel_to_magnitude(feats: torch.Tensor, cfg: FeatureConfig, lengths: torch.Tensor | None = None,
                        method: str = "pinv", n_iter: int = 100) -> torch.Tensor:
    """Log-mel [B, D, T] -> linear STFT magnitude [B, F, T] of the pre-emphasised signal; frames at
    or past ``lengths`` are 0."""
    if feats.dim() != 3 or feats.shape[1] != cfg.features:
        raise ValueError(f"feats must be [B, {cfg.features}, T], got {tuple(feats.shape)}")
    power = mel_to_power(logmel_to_melpower(feats.float(), cfg), cfg, method, n_iter)
    mag = power.pow(1.0 / cfg.mag_power)
    if lengths is not None:
        pad = torch.arange(mag.shape[-1], device=mag.device)[None, :] >= lengths.to(mag.device)[:, None]
        mag = mag.masked_fill(pad[:, None, :], 0.0)
    return mag


# ------------------------------------------------------------------------------ learned refinement
@dataclass
class RefinerConfig:
    hidden: int = 128
    layers: int = 3
    kernel: int = 5
    inversion: str = "pinv"


class MelRefiner(nn.Module):
    """``log|X| = log(|X|_inv + eps) + net(log-mel)``: a small 1-D conv net over time (mel bands as
    channels) predicting a log-magnitude correction per linear bin. The last layer starts at zero, so
    an untrained refiner returns the plain inversion."""

    def __init__(self, n_mels: int = 80, n_freq: int = 257, hidden: int = 128, layers: int = 3, kernel: int = 5,
                 inversion: str = "pinv"):
        super().__init__()
        self.n_mels, self.n_freq = n_mels, n_freq
        self.config = RefinerConfig(hidden, layers, kernel, inversion)
        mods, c = [], n_mels
        for _ in range(layers):
            mods += [nn.Conv1d(c, hidden, kernel, padding=kernel // 2), nn.GELU()]
            c = hidden
        self.body = nn.Sequential(*mods)
        self.out = nn.Conv1d(c, n_freq, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, feats: torch.Tensor, mag: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """feats [B, D, T] log-mel, mag [B, F, T] inverted magnitude -> refined magnitude [B, F, T]."""
        x = feats
        if lengths is not None:
            valid = (torch.arange(x.shape[-1], device=x.device)[None, :] < lengths.to(x.device)[:, None])[:, None, :]
            x = x * valid
        corr = self.out(self.body(x))
        out = (torch.log(mag + _LOG_EPS) + corr).exp() - _LOG_EPS
        out = out.clamp(min=0.0)
        if lengths is not None:
            out = out * valid
        return out

    def save(self, path: str | Path) -> None:
        from specenh.utils.io import atomic_path

        with atomic_path(path) as tmp:
            torch.save({"kind": "mel_refiner", "n_mels": self.n_mels, "n_freq": self.n_freq,
                        "config": asdict(self.config), "state_dict": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "MelRefiner":
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ck, dict) or ck.get("kind") != "mel_refiner":
            raise ValueError(f"{path} is not a mel refiner checkpoint")
        m = cls(ck["n_mels"], ck["n_freq"], **ck["config"])
        m.load_state_dict(ck["state_dict"])
        return m.eval()


def clean_targets(waves: torch.Tensor, lengths: torch.Tensor, cfg: FeatureConfig
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-mel [B, D, T], |STFT| of the pre-emphasised signal [B, F, T], frames [B]) of clean waves,
    aligned frame for frame as the ASR features are (T = L // hop valid frames)."""
    from specenh.features.logmel import LogMelExtractor
    from specenh.vocoder.framing import stft

    feats, frames = LogMelExtractor(cfg)(waves, lengths)
    x = waves
    if cfg.preemph is not None:
        x = torch.cat([x[:, :1], x[:, 1:] - cfg.preemph * x[:, :-1]], dim=1)
    mag = stft(x, cfg, lengths).abs()[..., : feats.shape[-1]]
    mag = mag * (torch.arange(mag.shape[-1])[None, :] < frames[:, None])[:, None, :]
    return feats, mag, frames


def refiner_loss(net: MelRefiner, waves: torch.Tensor, lengths: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Mean L1 between refined and true log-magnitude (``log(|X| + 1e-5)``) over valid frames."""
    with torch.no_grad():
        feats, target, frames = clean_targets(waves, lengths, cfg)
        inv = logmel_to_magnitude(feats, cfg, frames, method=net.config.inversion)
    est = net(feats, inv, frames)
    valid = (torch.arange(est.shape[-1])[None, :] < frames[:, None])[:, None, :].to(est.dtype)
    diff = (torch.log(est + _LOG_EPS) - torch.log(target + _LOG_EPS)).abs() * valid
    return diff.sum() / (valid.sum() * est.shape[1]).clamp(min=1)


def train_refiner(waves: Sequence[np.ndarray], cfg: FeatureConfig | None = None, *, steps: int = 300,
                  batch_size: int = 8, crop_s: float = 1.0, lr: float = 1e-3, refiner: MelRefiner | None = None,
                  inversion: str = "pinv", seed: int = 0, log_every: int = 50) -> MelRefiner:
    """Train a :class:`MelRefiner` on clean waveforms: L1 between refined and true log-magnitude
    (``log(|X| + 1e-5)``) over valid frames, random crops of ``crop_s`` seconds, Adam."""
    cfg = cfg or FeatureConfig()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = refiner or MelRefiner(cfg.features, cfg.n_fft // 2 + 1, inversion=inversion)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    crop = int(crop_s * cfg.sample_rate)
    ws = [np.asarray(w, dtype=np.float32) for w in waves]
    if not ws:
        raise ValueError("train_refiner needs at least one waveform")
    for step in range(steps):
        batch = np.zeros((batch_size, crop), dtype=np.float32)
        lens = np.zeros(batch_size, dtype=np.int64)
        for i in range(batch_size):
            w = ws[rng.integers(len(ws))]
            s = rng.integers(len(w) - crop + 1) if len(w) > crop else 0
            seg = w[s:s + crop]
            batch[i, :len(seg)], lens[i] = seg, len(seg)
        loss = refiner_loss(net, torch.from_numpy(batch), torch.from_numpy(lens), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            log.info("refiner step %d/%d: log-mag L1 %.4f", step + 1, steps, loss.item())
    return net.eval()


__all__ = ["logmel_to_melpower", "mel_to_power", "nnls_scipy", "logmel_to_magnitude", "MelRefiner",
           "train_refiner", "refiner_loss", "clean_targets"]
