"""``mask``: STFT-domain mask enhancer (domain ``wave``), a reimplementation of mask-based STFT speech
enhancement after Wilson et al., "Exploring Tradeoffs in Models for Low-latency Speech Enhancement"
(2018, arXiv:1811.07030).

Waveform -> STFT (25 ms periodic Hann, 10 ms hop, 512-point FFT: the ASR's framing, centred frames,
zero padding) -> a network on the power-law compressed magnitude ``|X|^c`` -> a mask -> inverse STFT
of the same length. The network (per frame, over time):

    Linear(F -> H) -> residual pre-norm dilated 1-D conv blocks -> LayerNorm -> (B)LSTM
    -> Linear([conv stream, LSTM output]) -> mask

- ``mask_type: ratio``: a real mask ``sigmoid(z)`` in (0, 1), phase of the input kept;
- ``mask_type: complex``: a complex mask with real and imaginary parts each bounded by
  ``mask_bound * tanh(.)`` (so it can also correct the phase).
- ``causal: true``: convolutions see only past frames and the LSTM is unidirectional, so a frame's
  output depends on input up to the end of its own analysis window (latency = one window).

The network input is the compressed magnitude normalised per utterance (per-bin mean removed,
divided by the utterance's RMS; running statistics when causal): gain invariant, and without the
large constant that otherwise swamps the temporal detail (the LSTM then only learns a static mask).
The final layer starts near zero with a bias giving a mask of ``init_mask`` everywhere, so an
untrained model is close to a scaled identity.

Batch consistency: frames past an utterance's ``1 + N // hop`` frames are zeroed before the
network and before the inverse STFT, every layer masks its padded frames, the LSTM runs on packed
sequences, and the inverse STFT normalises by the window envelope of the utterance's own frames.
So an utterance gives the same output alone or padded in a batch.

The training loss (:func:`compressed_spectral_loss`, Wilson et al. 2018 style) compares the STFT of
the *output waveform* (a consistent spectrogram) with the clean STFT:
``w_mag * MSE(|S^|^c, |S|^c) + w_cplx * MSE(|S^|^c e^{j phi^}, |S|^c e^{j phi})`` over valid bins.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from specenh.dsp.stft import PERIODIC, StftConfig, hann_torch, istft_torch, stft_torch
from specenh.frontends.base import FrontEnd, mask_padding, register


def time_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """[B, total] bool, True at valid positions."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


class STFT(nn.Module):
    """Centred STFT / inverse STFT with per-utterance frame counts (batch consistent).

    ``forward(wave [B, N], lengths [B]) -> (spec complex [B, F, T], frames [B])`` with
    ``T = 1 + N // hop`` and ``frames = 1 + lengths // hop``; frames at or past ``frames`` are zero.
    ``inverse(spec, frames, num_samples)`` is the weighted overlap-add inverse normalised by the
    summed squared window of each utterance's own valid frames.
    """

    def __init__(self, sample_rate: int = 16000, win_ms: float = 25.0, hop_ms: float = 10.0, n_fft: int = 512):
        super().__init__()
        self.win_length = int(round(win_ms * 1e-3 * sample_rate))
        self.hop = int(round(hop_ms * 1e-3 * sample_rate))
        self.n_fft = int(n_fft)
        if self.win_length > self.n_fft:
            raise ValueError(f"window ({self.win_length} samples) longer than n_fft ({self.n_fft})")
        self.cfg = StftConfig(n_fft=self.n_fft, hop=self.hop, win_length=self.win_length, window=PERIODIC)
        # periodic Hann built in float64 and cast, zero-padded to n_fft (what the trained models saw)
        self.register_buffer("window", hann_torch(self.cfg, dtype=torch.float64).float(), persistent=False)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return 1 + torch.div(lengths, self.hop, rounding_mode="floor")

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = stft_torch(wave.float(), self.cfg, lengths, window=self.window)
        return spec, self.frames(lengths)

    def inverse(self, spec: torch.Tensor, frames: torch.Tensor, num_samples: int) -> torch.Tensor:
        """complex [B, F, T] -> float [B, num_samples]."""
        return istft_torch(spec, self.cfg, frames=frames, num_samples=num_samples, window=self.window,
                           eps=1e-8, divide=True)


def compress(spec: torch.Tensor, c: float, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """(compressed magnitude |S|^c, compressed complex |S|^c e^{j phi}); smooth at |S| = 0."""
    p = spec.real.square() + spec.imag.square() + eps
    mag = p.pow(c / 2)
    return mag, spec * p.pow((c - 1) / 2)


def compressed_spectral_loss(est: torch.Tensor, ref: torch.Tensor, frames: torch.Tensor, *, c: float = 0.3,
                             mag_weight: float = 0.887, complex_weight: float = 0.113) -> dict[str, torch.Tensor]:
    """Power-law compressed magnitude + complex MSE between complex spectrograms [B, F, T], averaged
    over valid bins (frames < ``frames``). Returns {loss, mag, complex}."""
    valid = time_mask(frames.to(est.device), est.shape[-1]).to(torch.float32)[:, None, :]
    n = valid.sum() * est.shape[1]
    em, ec = compress(est, c)
    rm, rc = compress(ref, c)
    l_mag = ((em - rm).square() * valid).sum() / n
    l_cplx = ((ec - rc).abs().square() * valid).sum() / n
    return {"loss": mag_weight * l_mag + complex_weight * l_cplx, "mag": l_mag, "complex": l_cplx}


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of [B, C, T] (per frame, so independent of padding and batch)."""

    def __init__(self, c: int):
        super().__init__()
        self.ln = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x.transpose(1, 2)).transpose(1, 2)


class _DilatedBlock(nn.Module):
    """Residual block: norm -> PReLU -> dilated conv (causal or centred) -> dropout, masked."""

    def __init__(self, ch: int, kernel: int, dilation: int, causal: bool, dropout: float):
        super().__init__()
        self.norm = _ChannelNorm(ch)
        self.act = nn.PReLU(ch)
        self.causal = causal
        span = (kernel - 1) * dilation
        self.pad = (span, 0) if causal else (span // 2, span - span // 2)
        self.conv = nn.Conv1d(ch, ch, kernel, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        z = F.pad(self.act(self.norm(h)) * valid, self.pad)  # padded frames stay zero (as alone)
        return (h + self.drop(self.conv(z))) * valid


@register("mask")
class MaskEnhancer(FrontEnd):
    """STFT ratio / complex mask estimated by dilated convs + (B)LSTM on compressed magnitudes."""

    domain = "wave"
    default_conditions = ("noise_*",)
    trainable = True

    def __init__(self, sample_rate: int = 16000, win_ms: float = 25.0, hop_ms: float = 10.0, n_fft: int = 512,
                 compress: float = 0.3, hidden: int = 128, conv_kernel: int = 3,
                 dilations: Sequence[int] = (1, 2, 4, 8), lstm_layers: int = 2, lstm_hidden: int = 128,
                 causal: bool = False, mask_type: str = "ratio", mask_bound: float = 1.0, init_mask: float = 0.9,
                 dropout: float = 0.0):
        super().__init__(sample_rate=sample_rate, win_ms=win_ms, hop_ms=hop_ms, n_fft=n_fft, compress=compress,
                         hidden=hidden, conv_kernel=conv_kernel, dilations=[int(d) for d in dilations],
                         lstm_layers=lstm_layers, lstm_hidden=lstm_hidden, causal=causal, mask_type=mask_type,
                         mask_bound=mask_bound, init_mask=init_mask, dropout=dropout)
        if mask_type not in ("ratio", "complex"):
            raise ValueError(f"mask_type must be 'ratio' or 'complex', got {mask_type!r}")
        if not 0.0 < init_mask < (1.0 if mask_type == "ratio" else mask_bound):
            raise ValueError(f"init_mask {init_mask} out of the mask's range")
        self.stft = STFT(sample_rate, win_ms, hop_ms, n_fft)
        nf = self.stft.n_freq
        self.c, self.causal = float(compress), bool(causal)
        self.mask_type, self.mask_bound = mask_type, float(mask_bound)
        self.inp = nn.Conv1d(nf, hidden, 1)
        self.blocks = nn.ModuleList(_DilatedBlock(hidden, conv_kernel, int(d), self.causal, dropout) for d in dilations)
        self.mid_norm = _ChannelNorm(hidden)  # the residual stream grows; keeps the LSTM out of saturation
        self.lstm = (nn.LSTM(hidden, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                             bidirectional=not self.causal, dropout=dropout if lstm_layers > 1 else 0.0)
                     if lstm_layers > 0 else None)
        # the output layer sees the conv stream and the LSTM output (a skip around the LSTM: early in
        # training the LSTM passes little temporal detail and the model would settle on a static mask)
        feat = hidden + ((lstm_hidden * (1 if self.causal else 2)) if self.lstm is not None else 0)
        self.out = nn.Linear(feat, nf * (2 if mask_type == "complex" else 1))
        with torch.no_grad():  # start near a constant mask of init_mask (almost an identity)
            self.out.weight.mul_(0.1)
            if mask_type == "ratio":
                self.out.bias.fill_(math.log(init_mask / (1 - init_mask)))
            else:
                self.out.bias[:nf].fill_(math.atanh(init_mask / mask_bound))
                self.out.bias[nf:].zero_()

    # ---------------------------------------------------------------- pieces
    def normalise(self, mag: torch.Tensor, valid: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        """Network input: the compressed magnitude [B, F, T] minus its per-bin mean over the utterance,
        divided by its RMS over the utterance (so the input is gain invariant and free of the large
        constant that otherwise dominates every channel). Causal models use the running statistics of
        the frames so far instead. ``valid`` [B, 1, T]."""
        mag = mag * valid
        if self.causal:
            n = valid.cumsum(-1).clamp_min(1)  # [B, 1, T]
            mu = mag.cumsum(-1) / n
            rms = (mag.square().mean(1, keepdim=True).cumsum(-1) / n).sqrt()
        else:
            n = valid.sum(-1, keepdim=True).clamp_min(1)  # [B, 1, 1]
            mu = mag.sum(-1, keepdim=True) / n
            rms = (mag.square().mean(1, keepdim=True).sum(-1, keepdim=True) / n).sqrt()
        return (mag - mu) / (rms + eps) * valid

    def estimate_mask(self, spec: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """complex spec [B, F, T] -> mask [B, F, T] (real for ratio masks, complex otherwise)."""
        t = spec.shape[-1]
        valid = time_mask(frames.to(spec.device), t)[:, None, :].to(spec.real.dtype)
        mag, _ = compress(spec, self.c)
        h = self.inp(self.normalise(mag, valid)) * valid
        for blk in self.blocks:
            h = blk(h, valid)
        h = (self.mid_norm(h) * valid).transpose(1, 2)  # [B, T, H]
        if self.lstm is not None:
            packed = pack_padded_sequence(h, frames.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
            r, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=t)
            h = torch.cat([h, r], dim=-1)
        z = self.out(h).transpose(1, 2)  # [B, F or 2F, T]
        if self.mask_type == "ratio":
            return torch.sigmoid(z) * valid
        nf = spec.shape[1]
        zf = torch.tanh(z.float()) * self.mask_bound
        m = torch.complex(zf[:, :nf], zf[:, nf:])
        return m * valid

    def apply_mask(self, wave: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor | None = None
                   ) -> torch.Tensor:
        """Mask the STFT of ``wave`` by ``mask`` [B, F, T] (estimated when None) and resynthesise [B, N]."""
        dev = wave.device.type
        with torch.autocast(device_type=dev, enabled=False):
            spec, frames = self.stft(wave, lengths)
        if mask is None:
            mask = self.estimate_mask(spec, frames)
        with torch.autocast(device_type=dev, enabled=False):
            mask = mask if mask.is_complex() else mask.float()
            out = self.stft.inverse(spec * mask, frames, wave.shape[-1])
        return mask_padding(out, lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2:
            raise ValueError(f"mask front-end expects waveforms [B, N], got {tuple(x.shape)}")
        return self.apply_mask(x, lengths), lengths

    def training_loss(self, est, target, lengths, loss_cfg) -> dict[str, torch.Tensor]:
        """The compressed spectral loss (waveforms ``[B, N]``), weights from the config's ``loss:`` section."""
        return self.loss(est, target, lengths, mag_weight=float(loss_cfg["mag_weight"]),
                         complex_weight=float(loss_cfg["complex_weight"]))

    def loss(self, est_wave: torch.Tensor, clean_wave: torch.Tensor, lengths: torch.Tensor, *,
             mag_weight: float = 0.887, complex_weight: float = 0.113,
             c: float | None = None) -> dict[str, torch.Tensor]:
        """Compressed spectral loss between the STFTs of the output and the clean waveforms."""
        with torch.autocast(device_type=est_wave.device.type, enabled=False):
            est, frames = self.stft(est_wave.float(), lengths)
            ref, _ = self.stft(clean_wave.float(), lengths)
            return compressed_spectral_loss(est, ref, frames, c=self.c if c is None else float(c),
                                            mag_weight=mag_weight, complex_weight=complex_weight)
