"""``bwe``: bandwidth extension on log-mels (domain ``logmel``): the audio super-resolution approach to
ASR on band-limited speech (predict the missing upper band so that a 16 kHz ASR recognises it), reimplemented.

Band-limited speech (resampled down and up, :mod:`specenh.degrade.bandlimit`) has log-mel bands above
its cut-off at the log floor (``log(2^-24)``). The front-end keeps the known low bands exactly and
predicts the missing upper ones:

1. cut-off band ``k`` per utterance: the bands ``>= k`` are missing. From the config (``cutoff_hz``:
   the first band whose upper filter edge lies above it), from a ``cutoff_band=`` keyword, or
   estimated from the input's energy profile (:func:`estimate_cutoff_band`); ``guard_bands`` more
   bands below the estimate are predicted too (the resampler's transition band is attenuated);
2. a network over frames (the 80 bands as channels; input = normalised known bands, zero elsewhere,
   plus the known-band indicator, so one model serves every cut-off): 1x1 conv, residual dilated
   1-D conv blocks, optional self-attention layers (key-padding masked), 1x1 conv to 80 bands;
3. output = the input on the known bands; on the missing ones the network's output, a residual on
   the normalised input (which is zero, i.e. the mean level, there).

Input with no detected cut-off (``k = n_mels``) passes through unchanged.

:func:`simulate_bandlimit` sets the bands ``>= k`` of clean log-mels to the floor: the trainer uses it
to augment the training pairs with cut-offs the training conditions lack (e.g. only 2 kHz in the
mini recipe, 1/2/4 kHz at test time).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from specenh.frontends.base import FrontEnd, mask_padding, register
from specenh.frontends.mask import _ChannelNorm, _DilatedBlock, time_mask

LOG_FLOOR = math.log(2.0**-24)  # NeMo's log zero guard: the value of an empty mel band


def mel_band_edges(n_mels: int = 80, sample_rate: int = 16000, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """[n_mels, 2] (lower, upper) edge frequencies in Hz of the slaney mel filters (as librosa/NeMo)."""
    import librosa

    f = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax or sample_rate / 2, htk=False)
    return np.stack([f[:-2], f[2:]], axis=1)


def cutoff_hz_to_band(cutoff_hz: float, n_mels: int = 80, sample_rate: int = 16000, fmin: float = 0.0,
                      fmax: float | None = None) -> int:
    """Number of bands lying entirely below ``cutoff_hz`` (= index of the first missing band)."""
    upper = mel_band_edges(n_mels, sample_rate, fmin, fmax)[:, 1]
    return int(np.searchsorted(upper, cutoff_hz, side="right"))


def estimate_cutoff_band(feats: torch.Tensor, lengths: torch.Tensor, *, floor: float = LOG_FLOOR,
                         margin: float = 1.5, speech_fraction: float = 0.5) -> torch.Tensor:
    """Index of the first missing band per utterance (``n_mels`` when nothing is missing).

    feats [B, D, T] unnormalised log-mel. Energy profile: per band, the mean log-mel over the
    utterance's loudest ``speech_fraction`` of valid frames (frame loudness = max over bands). The
    missing bands are the trailing run of bands whose profile is within ``margin`` (nats) of the log
    floor: band-limited input sits at the floor there, natural speech stays well above it.
    """
    b, d, t = feats.shape
    lengths = lengths.to(feats.device).clamp(min=1, max=t)
    valid = time_mask(lengths, t)  # [B, T]
    loud = feats.amax(dim=1).masked_fill(~valid, float("-inf"))  # [B, T]
    srt = loud.sort(dim=1, descending=True).values
    k = (lengths.float() * speech_fraction).ceil().long().clamp(min=1) - 1
    thr = srt.gather(1, k[:, None])  # [B, 1]
    sel = (valid & (loud >= thr)).to(feats.dtype)  # [B, T]
    prof = (feats * sel[:, None, :]).sum(-1) / sel.sum(-1, keepdim=True).clamp_min(1)  # [B, D]
    empty = prof < floor + margin
    # d minus the trailing run of empty bands = 1 + the index of the last non-empty band (0: all empty);
    # a max instead of a cumulative product, which ONNX export lacks
    band = torch.arange(1, d + 1, device=feats.device)
    return (band[None, :] * (~empty).to(band.dtype)).amax(-1)


def simulate_bandlimit(feats: torch.Tensor, band: torch.Tensor, floor: float = LOG_FLOOR) -> torch.Tensor:
    """Set bands ``>= band[b]`` of feats [B, D, T] to the log floor (a band-limited input)."""
    miss = torch.arange(feats.shape[1], device=feats.device)[None, :] >= band.to(feats.device)[:, None]
    return feats.masked_fill(miss[:, :, None], floor)


def _tracing() -> bool:
    """True while the module is traced or exported (no data-dependent branches then)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


@register("bwe")
class BandwidthExtension(FrontEnd):
    """Predict the missing upper log-mel bands of band-limited speech; known bands are copied."""

    domain = "logmel"
    trainable = True
    default_conditions = ("bandlimit_*",)

    def augment_training_input(self, x: torch.Tensor, target: torch.Tensor, generator: torch.Generator,
                               augment_cfg: dict[str, Any]) -> torch.Tensor:
        """Simulated extra cut-offs: with probability ``cutoff_prob`` an input is replaced by its clean target cut
        at one of ``cutoffs_hz`` (+ up to ``jitter_bands`` bands), so the model sees more band limits than the
        training conditions hold."""
        prob = float(augment_cfg["cutoff_prob"])
        if prob <= 0:
            return x
        n_mels, sr = int(self.config.get("n_mels", 80)), int(self.config.get("sample_rate", 16000))
        bands = [cutoff_hz_to_band(float(c), n_mels, sr) for c in augment_cfg["cutoffs_hz"]]
        b = x.shape[0]
        pick = torch.rand(b, generator=generator) < prob
        if not pick.any():
            return x
        choice = torch.randint(len(bands), (b,), generator=generator)
        jit = torch.randint(int(augment_cfg["jitter_bands"]) + 1, (b,), generator=generator)
        band = torch.tensor(bands)[choice] + jit
        sim = simulate_bandlimit(target, band.to(target.device), floor=float(self.config.get("floor", math.log(2.0**-24))))
        return torch.where(pick.to(x.device)[:, None, None], sim, x)

    def __init__(self, n_mels: int = 80, sample_rate: int = 16000, hidden: int = 192, kernel: int = 5,
                 dilations: Sequence[int] = (1, 2, 4, 8, 1, 2, 4, 8), attn_layers: int = 0, attn_heads: int = 4,
                 cutoff_hz: float | None = None, guard_bands: int = 2, min_known_bands: int = 8,
                 floor: float = LOG_FLOOR, floor_margin: float = 1.5, feat_mean: float = -8.0,
                 feat_std: float = 4.0, dropout: float = 0.0):
        super().__init__(n_mels=n_mels, sample_rate=sample_rate, hidden=hidden, kernel=kernel,
                         dilations=[int(x) for x in dilations], attn_layers=attn_layers, attn_heads=attn_heads,
                         cutoff_hz=cutoff_hz, guard_bands=guard_bands, min_known_bands=min_known_bands,
                         floor=floor, floor_margin=floor_margin, feat_mean=feat_mean, feat_std=feat_std,
                         dropout=dropout)
        self.n_mels, self.sr = int(n_mels), int(sample_rate)
        self.mean, self.std = float(feat_mean), float(feat_std)
        self.floor, self.margin = float(floor), float(floor_margin)
        self.guard, self.min_known = int(guard_bands), int(min_known_bands)
        self.fixed_band = cutoff_hz_to_band(float(cutoff_hz), n_mels, sample_rate) if cutoff_hz else None
        self.inp = nn.Conv1d(2 * n_mels, hidden, 1)
        self.blocks = nn.ModuleList(_DilatedBlock(hidden, kernel, int(dl), False, dropout) for dl in dilations)
        self.attn = nn.ModuleList(
            nn.TransformerEncoderLayer(hidden, attn_heads, 4 * hidden, dropout, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(attn_layers))
        self.out_norm = _ChannelNorm(hidden)
        self.out = nn.Conv1d(hidden, n_mels, 1)

    def cutoff_bands(self, x: torch.Tensor, lengths: torch.Tensor,
                     cutoff_band: torch.Tensor | int | None = None) -> torch.Tensor:
        """Known bands per utterance [B]: bands ``< k`` are copied, the others predicted."""
        b = x.shape[0]
        if cutoff_band is not None:
            k = torch.as_tensor(cutoff_band, device=x.device).long().expand(b)
        elif self.fixed_band is not None:
            k = torch.full((b,), self.fixed_band, device=x.device, dtype=torch.long)
        else:
            k = estimate_cutoff_band(x, lengths, floor=self.floor, margin=self.margin)
            k = torch.where(k < self.n_mels, (k - self.guard).clamp(min=self.min_known), k)
        return k.clamp(0, self.n_mels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, cutoff_band: torch.Tensor | int | None = None,
                **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"bwe expects log-mels [B, {self.n_mels}, T], got {tuple(x.shape)}")
        lengths = lengths.to(x.device)
        k = self.cutoff_bands(x, lengths, cutoff_band)
        full = k >= self.n_mels  # nothing to predict: the output is the input
        if self.training or _tracing() or not bool(full.any()):
            return mask_padding(self._extend(x, lengths, k), lengths), lengths
        # inference: the network runs only on the band-limited utterances (on full-band speech, e.g. a noise
        # condition, bwe costs nothing and its output equals the input, which stage 5 decodes once)
        y = x.clone()
        idx = (~full).nonzero()[:, 0]
        if len(idx):
            t = int(lengths[idx].max())
            y[idx, :, :t] = self._extend(x[idx, :, :t], lengths[idx], k[idx])
        return mask_padding(y, lengths), lengths

    def _extend(self, x: torch.Tensor, lengths: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The network: bands ``>= k`` [B] of ``x`` [B, D, T] predicted from the known ones, which are copied."""
        b, d, t = x.shape
        known = (torch.arange(d, device=x.device)[None, :] < k[:, None])  # [B, D]
        kf = known.to(x.dtype)[:, :, None]
        valid = time_mask(lengths, t)[:, None, :].to(x.dtype)  # [B, 1, T]
        xn = (x - self.mean) / self.std * kf * valid
        # no normalisation here: the residual stream keeps each frame's level (the blocks are pre-norm)
        h = self.inp(torch.cat([xn, kf.expand(b, d, t) * valid], dim=1)) * valid
        for blk in self.blocks:
            h = blk(h, valid)
        if len(self.attn):
            pad = ~valid[:, 0].bool()
            z = h.transpose(1, 2)
            for layer in self.attn:
                z = layer(z, src_key_padding_mask=pad).masked_fill(pad[:, :, None], 0.0)
            h = z.transpose(1, 2)
        res = self.out(self.out_norm(h))
        return torch.where(known[:, :, None], x, self.mean + self.std * (xn + res))
