"""The ``mask`` front-end's inference rewritten for ONNX export (used by :mod:`specenh.frontends.export` only).

:class:`~specenh.frontends.mask.MaskEnhancer` works on complex spectrograms, runs its LSTM on packed
sequences and computes its STFT framing with data-dependent Python branches; none of that exports.
:class:`MaskGraph` computes the same function with real tensors and static control flow, sharing the
enhancer's weights:

- STFT: the centred, zero-padded frames as a strided 1-D convolution whose kernels are the window times
  the real and imaginary DFT basis (``[B, 2F, T]``: real parts, then imaginary parts);
- the mask network: the enhancer's own layers on the compressed magnitude; the LSTM runs on the padded
  batch, and a bidirectional one layer by layer, its backward direction on each utterance reversed
  within its own length (what packing does);
- inverse STFT: the inverse real DFT and the weighted overlap-add in one transposed convolution,
  divided by the squared-window envelope of the utterance's own frames (also a transposed convolution).

The result equals ``MaskEnhancer.enhance`` up to float rounding (a DFT by matrix products instead of an
FFT): ``tests/test_export.py`` checks onnxruntime against PyTorch within 1e-4.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from specenh.frontends.base import mask_padding
from specenh.frontends.mask import MaskEnhancer


def _dft_kernels(window: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(analysis [2F, 1, n_fft], synthesis [2F, 1, n_fft]) for a padded window [n_fft], in float64 then
    cast: analysis rows ``w[n] cos(2 pi k n / N)`` and ``-w[n] sin(...)`` (the rfft of the windowed
    frame); synthesis rows the inverse real DFT (``irfft``, imaginary parts of DC and Nyquist ignored)
    times the window."""
    nf = n_fft // 2 + 1
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(nf, dtype=torch.float64)
    ang = 2.0 * math.pi * k[:, None] * n[None, :] / n_fft  # [F, N]
    w = window.to(torch.float64)[None, :]
    analysis = torch.cat([torch.cos(ang) * w, -torch.sin(ang) * w])
    scale = torch.full((nf, 1), 2.0 / n_fft, dtype=torch.float64)
    scale[0] = scale[-1] = 1.0 / n_fft  # DC and Nyquist appear once in the full spectrum
    im_scale = scale.clone()
    im_scale[0] = im_scale[-1] = 0.0
    synthesis = torch.cat([torch.cos(ang) * scale * w, -torch.sin(ang) * im_scale * w])
    return analysis.float()[:, None, :], synthesis.float()[:, None, :]


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, C]: each utterance's first ``lengths[b]`` frames reversed, the padding left in place."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    last = lengths.to(x.device)[:, None] - 1
    idx = torch.where(t <= last, last - t, t)  # [B, T]
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))


class _LstmStack(nn.Module):
    """A (B)LSTM of ``num_layers`` as single-direction layers with the weights of ``lstm``:
    ``forward(h [B, T, H], frames [B]) -> [B, T, H'] (zero past frames)``, equal on the valid frames to
    packing, running and unpacking ``lstm``."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.bidirectional = lstm.bidirectional
        self.fwd, self.bwd = nn.ModuleList(), nn.ModuleList()
        for layer in range(lstm.num_layers):
            for suffix, dest in (("", self.fwd), ("_reverse", self.bwd)):
                if suffix and not self.bidirectional:
                    continue
                w_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}")
                one = nn.LSTM(w_ih.shape[1], lstm.hidden_size, batch_first=True)
                with torch.no_grad():
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(one, f"{name}_l0").copy_(getattr(lstm, f"{name}_l{layer}{suffix}"))
                dest.append(one)

    def forward(self, h: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        valid = (torch.arange(h.shape[1], device=h.device)[None, :] < frames[:, None]).to(h.dtype)[:, :, None]
        for i, fwd in enumerate(self.fwd):
            out = fwd(h)[0]
            if self.bidirectional:
                back = reverse_within(self.bwd[i](reverse_within(h, frames))[0], frames)
                out = torch.cat([out, back], dim=-1)
            h = out * valid
        return h


class MaskGraph(nn.Module):
    """``forward(wave [B, N], lengths [B]) -> enhanced wave [B, N]`` of a :class:`MaskEnhancer`, in
    export-friendly operations (see the module docstring)."""

    def __init__(self, fe: MaskEnhancer):
        super().__init__()
        self.fe = fe
        st = fe.stft
        self.n_fft, self.hop, self.nf = st.n_fft, st.hop, st.n_freq
        analysis, synthesis = _dft_kernels(st.window, st.n_fft)
        self.register_buffer("analysis", analysis, persistent=False)
        self.register_buffer("synthesis", synthesis, persistent=False)
        self.register_buffer("win_sq", st.window.square()[None, None, :].clone(), persistent=False)
        self.lstm = _LstmStack(fe.lstm) if fe.lstm is not None else None

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        fe, half = self.fe, self.n_fft // 2
        n = wave.shape[-1]
        smask = (torch.arange(n, device=wave.device)[None, :] < lengths[:, None]).to(wave.dtype)
        spec = F.conv1d(F.pad((wave * smask)[:, None, :], (half, half)), self.analysis, stride=self.hop)
        t = spec.shape[-1]  # 1 + N // hop
        frames = 1 + torch.div(lengths, self.hop, rounding_mode="floor")
        valid = (torch.arange(t, device=wave.device)[None, :] < frames[:, None]).to(wave.dtype)[:, None, :]
        spec = spec * valid
        re, im = spec[:, : self.nf], spec[:, self.nf :]
        power = re.square() + im.square() + 1e-8  # compress(): |S|^c with the same guard
        h = fe.inp(fe.normalise(power.pow(fe.c / 2), valid)) * valid
        for blk in fe.blocks:
            h = blk(h, valid)
        h = (fe.mid_norm(h) * valid).transpose(1, 2)  # [B, T, H]
        if self.lstm is not None:
            h = torch.cat([h, self.lstm(h, frames)], dim=-1)
        z = fe.out(h).transpose(1, 2)
        if fe.mask_type == "ratio":
            m = torch.sigmoid(z) * valid
            out_re, out_im = re * m, im * m
        else:
            zf = torch.tanh(z) * fe.mask_bound * valid
            mr, mi = zf[:, : self.nf], zf[:, self.nf :]
            out_re, out_im = re * mr - im * mi, re * mi + im * mr
        y = F.conv_transpose1d(torch.cat([out_re, out_im], dim=1), self.synthesis, stride=self.hop)
        env = F.conv_transpose1d(valid, self.win_sq, stride=self.hop)
        y, env = y[:, 0, half : half + n], env[:, 0, half : half + n]
        y = torch.where(env > 1e-8, y / env.clamp(min=1e-8), torch.zeros_like(y))
        return mask_padding(y * smask, lengths)
