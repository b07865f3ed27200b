"""``inpaint``: a convolutional U-Net over the log-mel time-frequency plane that fills holes
(deep speech inpainting after L. Thieling and P. Jax, "Generally Applicable Deep Speech Inpainting Using
the Example of Bandwidth Extension", EUSIPCO 2021; reimplemented on log-mels instead of MFCCs; domain
``logmel``).

Two modes:

- blind (``oracle_mask: false``): input = the degraded log-mel; output = input + predicted residual
  everywhere (the network has to find the holes itself);
- oracle mask (``oracle_mask: true``): the hole mask is an extra input channel, the hole contents are
  replaced by a neutral value before the network, and the output keeps the input outside the holes:
  ``y = where(mask, prediction, x)``.

The degradation (:mod:`specenh.degrade.holes`) saves its masks in linear STFT bins
(bool [257, T_stft], True = zeroed). :func:`stft_mask_to_mel` projects them on the mel bands: a band
is missing in a frame when more than ``threshold`` (0.5) of its filterbank weight falls on masked
bins. :func:`load_mel_masks` reads ``holes_mask.scp`` of a data or feature dir (stage 3 copies it into
``dump/feats/<set>``) and returns per-utterance mel masks cut to the feature frames;
:func:`pad_mel_masks` batches them as the ``mask`` keyword of ``forward``. How stage 5 passes it: when
``frontend.needs_mask`` is true, ``mask=pad_mel_masks(load_mel_masks(feats_dir, batch, n2f))``.

Any number of frames works: the input is zero-padded to a multiple of the U-Net's time factor, every
layer masks frames past the utterance's length at its resolution, and the output is cut back. So an
utterance gives the same output alone or in a padded batch.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specenh.frontends.base import BatchInputs, FrontEnd, mask_padding, register

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- masks
def stft_mask_to_mel(mask: torch.Tensor | np.ndarray, fb: torch.Tensor | np.ndarray,
                     threshold: float = 0.5) -> torch.Tensor:
    """STFT-bin hole mask [F, T] (True = removed) -> mel-band mask [n_mels, T] (bool).

    A band is missing in a frame when the filterbank-weighted fraction of its masked bins exceeds
    ``threshold``: ``(fb @ mask) / fb.sum(1) > threshold``. ``fb`` is [n_mels, F].
    """
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    fb = torch.as_tensor(fb, dtype=torch.float32)
    if m.dim() != 2 or m.shape[0] != fb.shape[1]:
        raise ValueError(f"mask must be [{fb.shape[1]} bins, T], got {tuple(m.shape)}")
    frac = fb @ m.to(torch.float32) / fb.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return frac > threshold


def _resolve(path: str, roots: Sequence[Path]) -> Path:
    p = Path(path)
    if p.is_absolute() or p.is_file():
        return p
    for r in roots:
        if (r / p).is_file():
            return r / p
    return p


def load_mel_masks(data_dir: str | Path, utts: Sequence[str], num_frames: Mapping[str, int] | None = None, *,
                   fb: torch.Tensor | None = None, threshold: float = 0.5) -> list[torch.Tensor]:
    """Mel hole masks (bool [n_mels, T]) for ``utts`` from ``data_dir/holes_mask.scp``.

    ``data_dir`` is a Kaldi data dir or a stage-3 feature dir (which copies ``holes_mask.scp``).
    Relative paths in the scp are tried from the working directory (the recipe dir) and from the
    recipe root guessed from ``data_dir`` (``data/<set>`` or ``dump/feats/<set>``). The STFT mask has
    ``1 + N // hop`` frames, the features ``N // hop``: with ``num_frames`` each mask is cut (or
    zero-padded) to the feature frames. ``fb`` defaults to the filterbank of the default
    :class:`~specenh.features.logmel.FeatureConfig` (80 slaney bands, 512-point FFT); pass
    ``mel_filterbank(asr.feat_config)`` for an ASR with other features.
    """
    from specenh.data.kaldi import read_kv

    data_dir = Path(data_dir)
    scp = data_dir / "holes_mask.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp} not found: the oracle-mask inpainter needs the hole masks of the "
                                f"holes degradation (stage 2 writes holes_mask.scp)")
    table = read_kv(scp)
    if fb is None:
        from specenh.features.logmel import FeatureConfig, mel_filterbank

        fb = mel_filterbank(FeatureConfig())
    roots = [data_dir.parent.parent, data_dir.parent.parent.parent]
    out = []
    for u in utts:
        if u not in table:
            raise KeyError(f"utterance {u!r} has no hole mask in {scp}")
        p = _resolve(table[u], roots)
        try:
            m = np.load(p)
        except Exception as e:
            raise ValueError(f"cannot read hole mask of {u!r} ({p}): {e}") from None
        mel = stft_mask_to_mel(m, fb, threshold)
        if num_frames is not None:
            t = int(num_frames[u])
            mel = mel[:, :t] if mel.shape[1] >= t else F.pad(mel, (0, t - mel.shape[1]))
        out.append(mel)
    return out


def pad_mel_masks(masks: Sequence[torch.Tensor], total: int | None = None) -> torch.Tensor:
    """List of bool [n_mels, T_i] -> bool [B, n_mels, max(T_i) or total] (padding False)."""
    total = total or max(int(m.shape[1]) for m in masks)
    out = torch.zeros(len(masks), masks[0].shape[0], total, dtype=torch.bool)
    for i, m in enumerate(masks):
        t = min(total, m.shape[1])
        out[i, :, :t] = m[:, :t]
    return out


# ---------------------------------------------------------------------------- network
def _down_len(lengths: torch.Tensor, level: int) -> torch.Tensor:
    return torch.div(lengths + (2**level - 1), 2**level, rounding_mode="floor")


def _tmask(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero frames (last axis) at or past ``lengths``: h [B, C, F, T]."""
    valid = torch.arange(h.shape[-1], device=h.device)[None, :] < lengths[:, None]
    return h * valid[:, None, None, :].to(h.dtype)


class _Block(nn.Module):
    """Two 3x3 convs with GELU, masked in time after each; a 1x1 skip when channels change."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = _tmask(F.gelu(self.c1(x)), lengths)
        h = self.drop(F.gelu(self.c2(h)))
        return _tmask(h + self.skip(x), lengths)


class UNet2d(nn.Module):
    """U-Net over [B, C_in, F, T]: len(channels) resolutions, stride-2 convs down, nearest-neighbour
    upsampling + conv up, skip concatenation; every layer masked by the per-utterance length."""

    def __init__(self, in_ch: int, out_ch: int, channels: Sequence[int], dropout: float = 0.0):
        super().__init__()
        ch = list(channels)
        self.levels = len(ch)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        prev = in_ch
        for i, c in enumerate(ch):
            self.enc.append(_Block(prev, c, dropout))
            prev = c
            if i < len(ch) - 1:
                self.down.append(nn.Conv2d(c, ch[i + 1], 3, stride=2, padding=1))
                prev = ch[i + 1]
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(ch) - 2, -1, -1):
            self.up.append(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1))
            self.dec.append(_Block(2 * ch[i], ch[i], dropout))
        self.head = nn.Conv2d(ch[0], out_ch, 1)

    @property
    def factor(self) -> int:
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for i, blk in enumerate(self.enc):
            li = _down_len(lengths, i)
            h = blk(h, li)
            if i < self.levels - 1:
                skips.append(h)
                h = _tmask(F.gelu(self.down[i](h)), _down_len(lengths, i + 1))
        for j, (up, blk) in enumerate(zip(self.up, self.dec)):
            lvl = self.levels - 2 - j
            s = skips[lvl]
            h = F.interpolate(h, size=s.shape[-2:], mode="nearest")
            h = _tmask(F.gelu(up(h)), _down_len(lengths, lvl))
            h = blk(torch.cat([h, s], dim=1), _down_len(lengths, lvl))
        return self.head(h)


@register("inpaint")
class InpaintUNet(FrontEnd):
    """Log-mel hole filling with a U-Net (blind, or with the hole mask as an input channel)."""

    domain = "logmel"
    default_conditions = ("holes*",)
    cpu_chunk_frames = 1000  # 2 cores: 146x real time in chunks of 1000 frames, 56x in batches of 32 (egs/mini)
    cpu_channels_last = True  # 2 cores, egs/mini: 163x real time at batch 1, 102x in the default layout
    trainable = True

    def __init__(self, n_mels: int = 80, channels: Sequence[int] = (16, 32, 64), oracle_mask: bool = False,
                 feat_mean: float = -8.0, feat_std: float = 4.0, dropout: float = 0.0):
        super().__init__(n_mels=n_mels, channels=[int(c) for c in channels], oracle_mask=oracle_mask,
                         feat_mean=feat_mean, feat_std=feat_std, dropout=dropout)
        self.n_mels, self.oracle_mask = int(n_mels), bool(oracle_mask)
        self.mean, self.std = float(feat_mean), float(feat_std)
        self.net = UNet2d(2 if self.oracle_mask else 1, 1, channels, dropout)
        with torch.no_grad():  # start as the identity (zero residual)
            self.net.head.weight.mul_(0.1)
            self.net.head.bias.zero_()

    @property
    def needs_mask(self) -> bool:
        """True when ``forward`` needs ``mask=`` (bool [B, n_mels, T], True = hole)."""
        return self.oracle_mask

    def extra_inputs(self, batch: BatchInputs) -> dict[str, Any]:
        """Oracle-mask inpainting: the hole masks stage 2 saved beside the set (``holes_mask.scp``)."""
        if not self.oracle_mask:
            return {}
        if batch.feats_dir is None:
            raise ValueError("inpaint with oracle_mask=true needs the set's saved hole masks (a feature dir)")
        masks = load_mel_masks(batch.feats_dir, batch.utts, batch.num_frames)
        return {"mask": pad_mel_masks(masks, batch.frames).to(batch.device)}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor | None = None,
                **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"inpaint expects log-mels [B, {self.n_mels}, T], got {tuple(x.shape)}")
        b, d, t = x.shape
        lengths = lengths.to(x.device)
        xn = (x - self.mean) / self.std
        if self.oracle_mask:
            if mask is None:
                raise ValueError("inpaint with oracle_mask=true needs mask= (bool [B, n_mels, T], True = hole); "
                                 "see specenh.frontends.inpaint.load_mel_masks")
            if mask.shape[0] != b or mask.shape[1] != d:
                raise ValueError(f"mask shape {tuple(mask.shape)} does not match features {tuple(x.shape)}")
            m = mask.to(x.device, torch.bool)
            m = m[..., :t] if m.shape[-1] >= t else F.pad(m, (0, t - m.shape[-1]))
            mf = m.to(x.dtype)
            xn = xn * (1 - mf)  # hole contents -> the neutral value (the mean)
            inp = torch.stack([xn, mf], dim=1)
        else:
            inp = xn[:, None]
        fac = self.net.factor
        tp = (t + fac - 1) // fac * fac  # not -(-t // fac): ONNX integer division truncates (export)
        inp = _tmask(F.pad(inp, (0, tp - t)), lengths)
        res = self.net(inp, lengths)[:, 0, :, :t]
        y = self.mean + self.std * (xn + res)
        if self.oracle_mask:
            y = torch.where(m, y, x)
        return mask_padding(y, lengths), lengths
