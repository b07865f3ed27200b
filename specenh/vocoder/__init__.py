"""specenh.vocoder: log-mel features back to a waveform (mel-spectrogram inversion by the filterbank
pseudo-inverse and Griffin-Lim variants, reimplemented: GLA, Griffin and Lim 1984; FGLA, Perraudin et al.
2013; DeGLI, Masuyama et al. 2020).

Pipeline of :func:`logmel_to_wave`:

1. undo the log and its guard -> mel power; mel -> linear ``|X|^2`` by the filterbank pseudo-inverse
   (``pinv``, clamped at 0) or NNLS (``nnls``); ``|X| = sqrt``. Optional learned :class:`MelRefiner`.
2. phase reconstruction, batched in torch: GLA, FGLA (momentum 0.99 by default) or DeGLI, on the
   ASR's STFT grid (25 ms symmetric Hann, 10 ms hop, 512 FFT, centred). The ``T`` feature frames
   are the first ``T`` of the ``T + 1`` STFT frames of ``T * hop`` samples; the last frame (which
   NeMo computes and drops) is left free during the iterations.
3. undo NeMo's pre-emphasis with the IIR de-emphasis filter ``1 / (1 - 0.97 z^-1)``.

Output: ``wave [B, N]`` with ``lengths = frames * hop`` samples (the original length rounded down
to a whole hop, i.e. within 10 ms of it).
"""
from __future__ import annotations

import numpy as np
import torch

from specenh.features.logmel import FeatureConfig
from specenh.vocoder.mel import MelRefiner, logmel_to_magnitude, refiner_loss, train_refiner
from specenh.vocoder.phase import (DeGLIDenoiser, deep_griffin_lim, degli_loss, fast_griffin_lim, griffin_lim,
                                   spectral_convergence, train_degli)

METHODS = ("gla", "fgla", "degli")


def deemphasis(wave: torch.Tensor, coef: float, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of NeMo's pre-emphasis ``y[n] = x[n] - coef x[n-1]`` (``y[0] = x[0]``): the causal IIR
    filter ``x[n] = y[n] + coef x[n-1]`` (scipy.signal.lfilter, zero initial state). wave [B, N]."""
    from scipy.signal import lfilter

    out = lfilter([1.0], [1.0, -float(coef)], wave.detach().cpu().double().numpy(), axis=-1)
    out = torch.from_numpy(out.astype(np.float32)).to(wave.device)
    if lengths is not None:
        out = out * (torch.arange(out.shape[-1], device=out.device)[None, :] < lengths.to(out.device)[:, None])
    return out


def preemphasis(wave: torch.Tensor, coef: float) -> torch.Tensor:
    """NeMo's pre-emphasis ``y[0] = x[0]``, ``y[n] = x[n] - coef x[n-1]`` (for tests and training)."""
    return torch.cat([wave[:, :1], wave[:, 1:] - coef * wave[:, :-1]], dim=1)


@torch.no_grad()
def logmel_to_wave(feats: torch.Tensor, lengths: torch.Tensor | None, cfg: FeatureConfig | None = None,
                   method: str = "fgla", n_iter: int = 32, *, inversion: str = "pinv", nnls_iter: int = 100,
                   momentum: float = 0.99, refiner: MelRefiner | None = None,
                   denoiser: DeGLIDenoiser | None = None, init: str = "zero", seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised log-mel [B, D, T] (frames ``lengths`` [B]) -> (waveform [B, T_max * hop], samples [B]).

    ``method``: gla | fgla (``momentum``) | degli (needs ``denoiser``); ``inversion``: pinv | nnls.
    Batched; utterance b's output does not depend on the rest of the batch.
    """
    cfg = cfg or FeatureConfig()
    if method not in METHODS:
        raise ValueError(f"unknown vocoder method {method!r}: {' | '.join(METHODS)}")
    if method == "degli" and denoiser is None:
        raise ValueError("method 'degli' needs a trained denoiser (train_degli / DeGLIDenoiser.load)")
    b, _, t = feats.shape
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long)
    lengths = lengths.to(feats.device).long()
    if int(lengths.min()) < 1:
        raise ValueError(f"every utterance needs at least one frame, got lengths {lengths.tolist()}")
    mag = logmel_to_magnitude(feats, cfg, lengths, method=inversion, n_iter=nnls_iter)
    if refiner is not None:
        mag = refiner.to(feats.device).eval()(feats.float(), mag, lengths)
    mag = torch.nn.functional.pad(mag, (0, 1))  # the free last frame
    known = torch.arange(t + 1, device=feats.device)[None, :] < lengths[:, None]
    kw = dict(frames=lengths + 1, known=known, num_samples=lengths * cfg.hop_length, init=init, seed=seed)
    if method == "gla":
        wave = griffin_lim(mag, n_iter, cfg, **kw)
    elif method == "fgla":
        wave = fast_griffin_lim(mag, n_iter, cfg, momentum=momentum, **kw)
    else:
        wave = deep_griffin_lim(mag, denoiser.to(feats.device).eval(), n_iter, cfg, **kw)
    out_len = lengths * cfg.hop_length
    if cfg.preemph is not None:
        wave = deemphasis(wave, cfg.preemph, out_len)
    return wave, out_len


__all__ = ["logmel_to_wave", "deemphasis", "preemphasis", "griffin_lim", "fast_griffin_lim", "deep_griffin_lim",
           "DeGLIDenoiser", "train_degli", "degli_loss", "MelRefiner", "train_refiner", "refiner_loss",
           "logmel_to_magnitude", "spectral_convergence", "METHODS"]
