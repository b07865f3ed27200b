"""Conditional StyleGAN2-style spectrogram enhancer: mapping network, generator, discriminator.

Shapes use B (batch), C (channels), H (frequency bands), W (frames at some resolution), T (frames).

The generator maps a degraded log-mel spectrogram to an enhanced one. It is a StyleGAN2 synthesis
network (constant start block, blocks of two 3x3 modulated/demodulated convolutions with per-pixel
noise, 1x1 "to-spectrogram" modulated convolutions summed across resolutions, x2 upsampling in
frequency and time per block) whose feature maps are averaged with the degraded spectrogram, resized
to the block's resolution, after every block: ``h <- (h + resize(cond)) / 2``. The style vectors w come
from a mapping network that tracks their running mean ``w_avg``; at inference w is truncated towards
it, ``w = w_avg + psi * (w - w_avg)``.

Length handling. Time is padded to a multiple of the total upsampling factor ``U``; at a resolution
``U / 2**k`` below full the valid length is ``ceil(T_valid / 2**k)``. Every convolution zero-pads,
every upsampling is a zero-boundary blur (the ``[1, 3, 3, 1]`` transposed filter of StyleGAN2), and
feature maps are multiplied by the length mask after every convolution, upsampling and block. An
utterance therefore gives the same output whether it is processed alone or in a padded batch, and the
content of padding never leaks in. Inference is deterministic (fixed latent seeded by
``inference_seed``, zero noise by default), so batch composition does not change a result.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from specenh.frontends.base import FrontEnd, register

SQRT2 = math.sqrt(2.0)
LOG_FLOOR = math.log(2.0 ** -24)  # the log-mel floor of our features (log(x + 2^-24) of silence)


# ----------------------------------------------------------------------------- helpers
def time_mask(lengths: torch.Tensor, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """lengths [B] -> float mask [B, 1, 1, width] (1 on valid frames)."""
    t = torch.arange(width, device=lengths.device)
    return (t[None, :] < lengths[:, None]).to(dtype)[:, None, None, :]


def down_lengths(lengths: torch.Tensor, factor: int) -> torch.Tensor:
    """Valid length after reducing time by ``factor``: ceil(lengths / factor)."""
    return torch.div(lengths + factor - 1, factor, rounding_mode="floor")


def leaky(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Leaky ReLU(0.2) with StyleGAN's sqrt(2) gain, after adding a per-channel bias [C]."""
    if bias is not None:
        x = x + bias.view(1, -1, 1, 1).to(x.dtype)
    return F.leaky_relu(x, 0.2) * SQRT2


def act_mask(x: torch.Tensor, gain_mask: torch.Tensor) -> torch.Tensor:
    """leaky ReLU(0.2) then multiply by ``gain_mask`` (length mask x activation gain); in place when no
    gradient is recorded (inference: saves allocations of the largest tensors)."""
    if torch.is_grad_enabled():
        return F.leaky_relu(x, 0.2) * gain_mask
    return F.leaky_relu_(x, 0.2).mul_(gain_mask)


def mix_condition(x: torch.Tensor, cond: torch.Tensor, half_mask: torch.Tensor) -> torch.Tensor:
    """``(x + cond) / 2`` masked (``half_mask`` = mask / 2); in place when no gradient is recorded."""
    if torch.is_grad_enabled():
        return (x + cond) * half_mask
    return x.add_(cond).mul_(half_mask)


class EqualLinear(nn.Module):
    """Linear layer. ``equalised``: StyleGAN's equalised learning rate (weight ~ N(0, 1/lr_mul^2) scaled
    at run time by lr_mul / sqrt(in); used by the mapping network, whose effective learning rate is
    ``lr_mul`` times the optimiser's). Otherwise an ordinary layer with weights ~ N(0, 1/in)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 equalised: bool = True):
        super().__init__()
        if not equalised:
            lr_mul = 1.0
        std = 1.0 / lr_mul if equalised else 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) * std)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul = (lr_mul / math.sqrt(in_dim) if equalised else 1.0), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., out]."""
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Conv2d(nn.Module):
    """Plain 2-D convolution, weights ~ N(0, 1/fan_in) (with the sqrt(2) gain of the activations this
    keeps unit variance), zero padding k//2, optional stride and time (W) dilation (size kept)."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.stride, self.pad = stride, (kernel // 2, kernel // 2 * int(dilation))
        self.dilation = (1, int(dilation))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, Cin, H, W], optional extra bias [Cout] -> [B, Cout, H', W'] (same size for stride 1,
        ceil(size/2) for stride 2)."""
        b = self.bias if bias is None else (bias if self.bias is None else self.bias + bias)
        return F.conv2d(x, self.weight.to(x.dtype), None if b is None else b.to(x.dtype),
                        stride=self.stride, padding=self.pad, dilation=self.dilation)


def _blur_kernel(taps: Sequence[float]) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[:, None] * k[None, :]
    return k / k.sum()


class BlurUpsample(nn.Module):
    """x2 upsampling in both axes with StyleGAN2's [1, 3, 3, 1] filter and a zero boundary (a
    bilinear interpolation whose outside is zero, so masked padding behaves like the tensor edge).
    [B, C, H, W] -> [B, C, 2H, 2W]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel([1, 3, 3, 1]) * 4, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        return F.conv_transpose2d(x, k, stride=2, padding=1, groups=c)


class BlurDownsample(nn.Module):
    """x2 downsampling in both axes: [1, 2, 1] blur with zero padding, stride 2.
    [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel([1, 2, 1]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(x, k, stride=2, padding=1, groups=c)


# ----------------------------------------------------------------------------- mapping network
class MappingNetwork(nn.Module):
    """z [B, latent] -> w [B, latent]: pixel norm, then ``depth`` equalised linear layers (lr x0.1).

    Keeps ``w_avg`` [latent] (a buffer, saved in checkpoints), the running mean of w updated with
    ``update_w_avg`` (``w_avg <- beta * w_avg + (1 - beta) * mean_batch(w)``) during training.
    """

    def __init__(self, latent_dim: int, depth: int, lr_mul: float = 0.1, w_avg_beta: float = 0.995):
        super().__init__()
        self.layers = nn.ModuleList(EqualLinear(latent_dim, latent_dim, lr_mul=lr_mul) for _ in range(depth))
        self.register_buffer("w_avg", torch.zeros(latent_dim))
        self.beta = float(w_avg_beta)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, latent] -> w [B, latent]."""
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2) * SQRT2
        return x

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """Move the running mean towards the batch mean of w [B, latent]."""
        self.w_avg.copy_(torch.lerp(w.detach().float().mean(0), self.w_avg, self.beta))

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """Style truncation: ``w_avg + psi * (w - w_avg)``; psi=0 gives w_avg, psi=1 gives w. w [..., latent]."""
        return self.w_avg.to(w.dtype) + psi * (w - self.w_avg.to(w.dtype))


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """Functional form of :meth:`MappingNetwork.truncate`."""
    return w_avg + psi * (w - w_avg)


# ----------------------------------------------------------------------------- generator
class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution in the non-fused form (exactly equivalent to the grouped one):
    scale input channels by the style ``s = A(w)``, convolve with the shared weight, then (demodulate)
    scale each output channel by ``1/sqrt(sum_{i,k} (w_oik s_i)^2 + 1e-8)``. One ordinary batched
    convolution, fast on CPU at any batch size. With one style for the whole batch (w [1, latent], as at
    inference) style and demodulation are folded into the weight: a plain convolution.

    x [B, Cin, H, W], w [B, latent] or [1, latent], bias [Cout] or None -> [B, Cout, H, W].
    ``dilation``: in time (W) only; the output keeps the input's size.
    """

    def __init__(self, latent_dim: int, cin: int, cout: int, kernel: int, demodulate: bool = True,
                 dilation: int = 1):
        super().__init__()
        self.affine = EqualLinear(latent_dim, cin, bias_init=1.0, equalised=False)
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.pad, self.demodulate = (kernel // 2, kernel // 2 * int(dilation)), demodulate
        self.dilation = (1, int(dilation))

    def forward(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        s = self.affine(w)  # [B or 1, Cin]
        weight = self.weight
        d = None
        if self.demodulate:
            dt = torch.promote_types(weight.dtype, torch.float32)
            wsq = weight.to(dt).pow(2).sum(dim=(2, 3))  # [Cout, Cin]
            d = torch.rsqrt(s.to(dt).pow(2) @ wsq.t() + 1e-8).to(s.dtype)  # [B or 1, Cout]
        b = None if bias is None else bias.to(x.dtype)
        if s.shape[0] == 1:  # shared style: fold into the weight
            weight = weight * s[0][None, :, None, None]
            if d is not None:
                weight = weight * d[0][:, None, None, None]
            return F.conv2d(x, weight.to(x.dtype), b, padding=self.pad, dilation=self.dilation)
        out = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.pad,
                       dilation=self.dilation)
        if d is not None:
            out = out * d[:, :, None, None].to(out.dtype)
        return out if b is None else out + b.view(1, -1, 1, 1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv + per-pixel noise (per-channel strength, initially 0) + bias + leaky ReLU,
    times ``gain_mask`` (the length mask times the activation gain sqrt(2))."""

    def __init__(self, latent_dim: int, cin: int, cout: int, dilation: int = 1):
        super().__init__()
        self.conv = ModulatedConv2d(latent_dim, cin, cout, 3, dilation=dilation)
        self.noise_strength = nn.Parameter(torch.zeros(cout))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None,
                gain_mask: torch.Tensor) -> torch.Tensor:
        """x [B, Cin, H, W], w [B or 1, latent], noise [B, 1, H, W] or None (zero noise),
        gain_mask [B, 1, 1, W] -> [B, Cout, H, W]."""
        if noise is None:
            x = self.conv(x, w, self.bias)
            if self.training:  # keep the parameter in the graph (DDP: no unused parameters)
                x = x + 0.0 * self.noise_strength.sum()
        else:
            x = self.conv(x, w)
            x = x + (noise.to(x.dtype) * self.noise_strength.view(1, -1, 1, 1).to(x.dtype)
                     + self.bias.view(1, -1, 1, 1).to(x.dtype))
        return act_mask(x, gain_mask)


class ToSpectrogram(nn.Module):
    """1x1 modulated conv without demodulation to ``channels`` channels, + bias. [B, C, H, W] -> [B, channels, H, W]."""

    def __init__(self, latent_dim: int, cin: int, channels: int = 1):
        super().__init__()
        self.conv = ModulatedConv2d(latent_dim, cin, channels, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w, self.bias)


class GeneratorBlock(nn.Module):
    """(x2 blur upsampling) -> styled conv -> styled conv, masked after each step; plus to-spectrogram.
    ``dilations``: time dilations of the two convs ((1, 1) in the upsampling blocks)."""

    def __init__(self, latent_dim: int, cin: int, cout: int, upsample: bool, dilations: tuple[int, int] = (1, 1),
                 out_channels: int = 1):
        super().__init__()
        self.up = BlurUpsample() if upsample else None
        self.conv1 = StyledConv(latent_dim, cin, cout, dilation=dilations[0])
        self.conv2 = StyledConv(latent_dim, cout, cout, dilation=dilations[1])
        self.to_spec = ToSpectrogram(latent_dim, cout, out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, mask: torch.Tensor,
                noise: tuple[torch.Tensor | None, torch.Tensor | None]) -> torch.Tensor:
        """x [B, Cin, H/2, W/2] (or [B, Cin, H, W] without upsampling), mask [B, 1, 1, W] -> [B, Cout, H, W]."""
        if self.up is not None:
            x = self.up(x)
            x = x * mask if torch.is_grad_enabled() else x.mul_(mask)
        gm = mask * SQRT2
        x = self.conv1(x, w, noise[0], gm)
        return self.conv2(x, w, noise[1], gm)


class ConditionEncoder(nn.Module):
    """Plain (unmodulated) convolutions over the degraded spectrogram at full resolution: a 3x3 conv
    1 -> C, then 3x3 convs C -> C dilated in time by 1, 2, 4, 8, ... (``layers`` of them), leaky ReLU
    and the length mask after each. Its features replace the one-channel condition that the generator
    averages in after every block (pooled to the block's resolution like the condition, then a 1x1
    projection to the block's channels), so non-linear processing of the degraded input reaches every
    block, the full-resolution ones included.

    ``relative``: a second input channel, the input relative to each band's utterance peak
    (:meth:`relative_level`).

    x [B, 1, H, T] (masked), mask [B, 1, 1, T] -> [B, C, H, T] (zero past the mask).
    """

    def __init__(self, channels: int, layers: int = 4, relative: bool = False):
        super().__init__()
        self.relative = bool(relative)
        self.inp = Conv2d(2 if self.relative else 1, channels, 3)
        self.convs = nn.ModuleList(Conv2d(channels, channels, 3, dilation=2 ** j) for j in range(int(layers)))

    @staticmethod
    def relative_level(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, 1, H, T] minus each band's maximum over the valid frames of its utterance (<= 0 on valid
        frames, 0 past the mask): how far a bin lies below the loudest moment of its band. Additive noise
        at a given SNR sits a roughly fixed distance below the talker's peaks, whatever the recording level,
        which no convolution of limited context can measure."""
        peak = x.masked_fill(mask == 0, float("-inf")).amax(dim=-1, keepdim=True)
        return (x - torch.nan_to_num(peak, neginf=0.0)) * mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        gm = mask * SQRT2
        if self.relative:
            x = torch.cat([x, self.relative_level(x, mask)], dim=1)
        h = act_mask(self.inp(x), gm)
        for c in self.convs:
            h = act_mask(c(h), gm)
        return h


def generator_filters(n_blocks: int, capacity: int, fmap_max: int) -> list[int]:
    """Channel counts from the coarsest to the finest block: capacity * 2^(i+1), capped, reversed."""
    return [min(fmap_max, capacity * 2 ** (i + 1)) for i in range(n_blocks)][::-1]


class Generator(nn.Module):
    """Conditional StyleGAN2 synthesis network on normalised spectrograms.

    Args:
        n_bands: frequency bands H of the spectrogram.
        latent_dim: size of z and w.
        capacity, fmap_max: channels of block i (coarsest first) = min(fmap_max, capacity * 2^(n_blocks - i)).
        n_blocks: number of blocks (None: ``int(log2(n_bands) - 1)``, 5 for 80 bands); the first works at
            the start resolution, each further block upsamples x2, so the total factor is U = 2^(n_blocks-1).
        channels: spectrogram channels (1).
        residual: add the condition to the summed to-spectrogram outputs (whose weights then start at
            zero), so the generator starts as the identity and learns a correction. Off in StyleGAN2 /
            NeMo's enhancer; useful when training time is short.
        refine_blocks: extra blocks at full resolution (no upsampling), after the last upsampling one,
            each with its own style, the condition averaged in and a to-spectrogram output like every
            block. Without them the full-resolution condition reaches the output only through the last
            block's 1x1 to-spectrogram convolution (it is averaged in *after* that block's 3x3
            convolutions), so no non-linear processing sees the degraded input at full resolution.
            Refinement block j dilates its two convolutions in time by 4^j and 2 * 4^j (1, 2, 4, 8, ...
            frames), for context along time at full resolution. 0 in StyleGAN2 / NeMo's enhancer.
        refine_channels: channels of the refinement blocks (None: those of the last upsampling block).
        cond_channels: 0 (StyleGAN2 / NeMo's enhancer): the one-channel condition is averaged into the
            feature maps, ``h <- (h + resize(cond)) / 2``. > 0: a :class:`ConditionEncoder` with that
            many channels processes the condition first and ``h <- (h + P_k(resize(E(cond)))) / 2`` with
            a 1x1 projection P_k per block.
        cond_layers: dilated convolutions of the condition encoder (time dilations 1, 2, 4, ...).
        cond_relative: the condition encoder also reads the input relative to each band's peak over the
            utterance (:meth:`ConditionEncoder.relative_level`), an utterance-level reference.
        gate: with ``residual``, the to-spectrogram outputs have two channels (r, g) and the output is
            ``cond * 2 sigmoid(g) + r``: a smooth per-bin gain on the normalised input (below 1 moves a
            bin towards the log-mel floor, i.e. silence) plus a correction; the identity at the start.
            Mask-based enhancers attenuate noise-dominated bins this way; a purely additive correction
            has to reproduce the input's detail to cancel it.

    forward(cond [B, 1, H, T] in [0, 1] and masked, lengths [B], ws: n_styles x [B, latent],
    noise_mode "random" | "zero") -> [B, 1, H, T] normalised, zero past ``lengths``.
    """

    def __init__(self, n_bands: int = 80, latent_dim: int = 192, capacity: int = 16, fmap_max: int = 192,
                 n_blocks: int | None = None, channels: int = 1, residual: bool = False, refine_blocks: int = 0,
                 refine_channels: int | None = None, cond_channels: int = 0, cond_layers: int = 4,
                 gate: bool = False, cond_relative: bool = False):
        super().__init__()
        self.residual = bool(residual)
        self.gate = bool(gate)
        if self.gate and not self.residual:
            raise ValueError("gate needs residual: the gain applies to the input, and both start at the identity")
        if int(cond_channels) < 0 or int(cond_layers) < 0:
            raise ValueError(f"cond_channels and cond_layers must be >= 0, got {cond_channels}, {cond_layers}")
        if int(refine_blocks) < 0:
            raise ValueError(f"refine_blocks must be >= 0, got {refine_blocks}")
        self.n_blocks = int(n_blocks) if n_blocks else max(1, int(math.log2(n_bands) - 1))
        self.factor = 2 ** (self.n_blocks - 1)
        self.n_bands = n_bands
        self.h0 = -(-n_bands // self.factor)  # start height; the top is cropped if H0 * U > n_bands
        filt = generator_filters(self.n_blocks, capacity, fmap_max)
        self.filters = filt
        self.initial = nn.Parameter(torch.randn(1, filt[0], self.h0, 1))
        self.initial_conv = Conv2d(filt[0], filt[0], 3, bias=False)
        self.initial_bias = nn.Parameter(torch.zeros(filt[0]))
        chans = [filt[0], *filt]
        oc = channels * (2 if self.gate else 1)  # (correction, gain logit) per spectrogram channel with gate
        self.blocks = nn.ModuleList(
            GeneratorBlock(latent_dim, chans[i], chans[i + 1], upsample=i > 0, out_channels=oc)
            for i in range(self.n_blocks))
        rc = int(refine_channels) if refine_channels else filt[-1]
        self.refine = nn.ModuleList(
            GeneratorBlock(latent_dim, filt[-1] if j == 0 else rc, rc, upsample=False, dilations=(4 ** j, 2 * 4 ** j),
                           out_channels=oc)
            for j in range(int(refine_blocks)))
        if cond_relative and not int(cond_channels):
            raise ValueError("cond_relative needs the condition encoder (cond_channels > 0)")
        self.encoder = (ConditionEncoder(int(cond_channels), int(cond_layers), relative=bool(cond_relative))
                        if int(cond_channels) else None)
        self.cond_proj = None
        if self.encoder is not None:
            self.cond_proj = nn.ModuleList(Conv2d(int(cond_channels), blk.conv2.conv.weight.shape[0], 1)
                                           for blk in (*self.blocks, *self.refine))
        self.up = BlurUpsample()
        if self.residual:  # output = condition + correction, starting from the identity
            for block in (*self.blocks, *self.refine):
                nn.init.zeros_(block.to_spec.conv.weight)

    @property
    def n_styles(self) -> int:
        """Style vectors the forward pass takes: one per block (upsampling and refinement)."""
        return self.n_blocks + len(self.refine)

    def padded_size(self, t: int) -> int:
        """Frames after padding to a multiple of the upsampling factor (non-negative operands only: ONNX
        integer division truncates, so the exported shape arithmetic of ``-(-t // f)`` would be wrong)."""
        return (t + self.factor - 1) // self.factor * self.factor

    def conditions(self, cond: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(condition, mask) per block, coarsest first: cond [B, 1, H_full, T_pad] masked ->
        [B, 1, H_full / 2^k, T_pad / 2^k] (mean over the valid frames of each cell) and [B, 1, 1, T_pad / 2^k].
        Built as a pyramid of 2x2 means (a mean of equal-size cell means is the mean of the union)."""
        num = cond
        den = time_mask(lengths, cond.shape[-1], cond.dtype)
        out = [(cond, den)]
        for k in range(1, self.n_blocks):
            num, den = F.avg_pool2d(num, 2), F.avg_pool2d(den, (1, 2))
            m = time_mask(down_lengths(lengths, 2 ** k), num.shape[-1], cond.dtype)
            out.append((num / den.clamp_min(2.0 ** -k) * m, m))
        return out[::-1]

    def forward(self, cond: torch.Tensor, lengths: torch.Tensor, ws: Sequence[torch.Tensor],
                noise_mode: str = "random") -> torch.Tensor:
        b, _, h, t = cond.shape
        t_pad, h_full = self.padded_size(t), self.h0 * self.factor
        if t_pad != t or h_full != h:
            cond = F.pad(cond, (0, t_pad - t, 0, h_full - h))
        conds = self.conditions(cond, lengths)
        feats = None
        if self.encoder is not None:  # pooled encoder features per block, coarsest first
            feats = [f for f, _ in self.conditions(self.encoder(cond, conds[-1][1]), lengths)]
            feats += [feats[-1]] * len(self.refine)
        c0, m0 = conds[0]
        x = self.initial.to(cond.dtype).expand(b, -1, -1, t_pad // self.factor)
        x = (x + c0) * (m0 * 0.5)
        x = act_mask(self.initial_conv(x, self.initial_bias), m0 * SQRT2)
        if noise_mode not in ("random", "zero"):
            raise ValueError(f"noise_mode must be 'random' or 'zero', got {noise_mode!r}")
        # (block, condition, mask, upsample the running spectrogram first); refinement: full resolution
        plan = [(blk, c, m, i > 0) for i, (blk, (c, m)) in enumerate(zip(self.blocks, conds))]
        plan += [(blk, *conds[-1], False) for blk in self.refine]
        spec = None
        for i, (block, c, m, up) in enumerate(plan):
            hh, ww = c.shape[-2:]
            noise = (None, None) if noise_mode == "zero" else tuple(
                torch.randn(b, 1, hh, ww, device=c.device, dtype=c.dtype) for _ in range(2))
            x = block(x, ws[i], m, noise)
            if feats is not None:
                c = self.cond_proj[i](feats[i])
            x = mix_condition(x, c, m * 0.5)
            s = block.to_spec(x, ws[i])
            if spec is None:
                spec = s * m
            else:
                spec = ((self.up(spec) if up else spec) + s) * m
        if self.gate:
            c = cond.shape[1]
            spec = cond * (2.0 * torch.sigmoid(spec[:, c:])) + spec[:, :c]
        elif self.residual:
            spec = spec + cond
        return spec[:, :, :h, :t]


# ----------------------------------------------------------------------------- discriminator
class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (+ blur-downsampling), skip = (blur-downsampling) + 1x1 conv;
    output = (main + skip) / sqrt(2), masked. [B, Cin, H, W] -> [B, Cout, ceil(H/2), ceil(W/2)] (or same)."""

    def __init__(self, cin: int, cout: int, downsample: bool):
        super().__init__()
        self.conv1 = Conv2d(cin, cout, 3, bias=False)
        self.b1 = nn.Parameter(torch.zeros(cout))
        self.conv2 = Conv2d(cout, cout, 3, bias=False)
        self.b2 = nn.Parameter(torch.zeros(cout))
        self.skip = Conv2d(cin, cout, 1, bias=False)
        self.down = BlurDownsample() if downsample else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, Cin, H, W] masked, lengths [B] valid frames at this resolution -> (out, out lengths)."""
        m = time_mask(lengths, x.shape[-1], x.dtype)
        h = leaky(self.conv1(x), self.b1) * m
        skip = x
        if self.down is not None:
            h, skip = self.down(h), self.down(skip)
            lengths = down_lengths(lengths, 2)
            m = time_mask(lengths, h.shape[-1], x.dtype)
            h, skip = h * m, skip * m
        h = leaky(self.conv2(h), self.b2) * m
        return (h + self.skip(skip)) / SQRT2 * m, lengths


class Discriminator(nn.Module):
    """Spectrogram discriminator: residual blur-downsampling blocks with length masks after each block,
    a final 3x3 conv, mean over frequency, length-normalised mean over time, linear to a logit.

    forward(x [B, 1, H, T] normalised, lengths [B]) -> logits [B]. Padding content never matters.
    Blocks: ``n_blocks`` (None: ``int(log2(n_bands) - 1)``) downsampling ones + one at the coarsest scale;
    channels min(fmap_max, 4 * capacity * 2^i).
    """

    def __init__(self, n_bands: int = 80, capacity: int = 16, fmap_max: int = 192, n_blocks: int | None = None,
                 channels: int = 1):
        super().__init__()
        nb = int(n_blocks) if n_blocks else max(1, int(math.log2(n_bands) - 1))
        filt = [channels] + [min(fmap_max, 4 * capacity * 2 ** i) for i in range(nb + 1)]
        self.blocks = nn.ModuleList(DiscriminatorBlock(filt[i], filt[i + 1], downsample=i < nb)
                                    for i in range(nb + 1))
        self.final_conv = Conv2d(filt[-1], filt[-1], 3, bias=False)
        self.final_bias = nn.Parameter(torch.zeros(filt[-1]))
        self.out = EqualLinear(filt[-1], 1, equalised=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = x * time_mask(lengths, x.shape[-1], x.dtype)
        for block in self.blocks:
            x, lengths = block(x, lengths)
        m = time_mask(lengths, x.shape[-1], x.dtype)
        x = leaky(self.final_conv(x), self.final_bias) * m
        x = (x.mean(dim=2, keepdim=True) * m).sum(dim=(2, 3)) / lengths.clamp_min(1)[:, None].to(x.dtype)  # [B, C]
        return self.out(x).squeeze(1)


# ----------------------------------------------------------------------------- the front-end
DEFAULTS: dict[str, Any] = {
    "n_bands": 80,
    "latent_dim": 192,
    "style_depth": 4,
    "capacity": 16,
    "fmap_max": 192,
    "n_blocks": None,
    "norm_min": LOG_FLOOR,   # fixed normalisation range of the log-mel input: (x - min) / (max - min)
    "norm_max": 6.0,
    "psi": 0.7,              # truncation at inference (1.0: none)
    "noise_mode": "zero",    # per-pixel noise at inference: zero (deterministic) | random
    "inference_seed": 0,     # the fixed latent z used at inference
    "mixing_prob": 0.9,      # style mixing in training
    "w_avg_beta": 0.995,
    "mapping_lr_mul": 0.1,
    "truncate_in_training": False,
    "residual": False,       # output = degraded input + generated correction (starts as the identity)
    "refine_blocks": 0,      # extra full-resolution blocks after the last upsampling one (see Generator)
    "refine_channels": None,  # their channels (None: the last upsampling block's)
    "cond_channels": 0,      # > 0: a convolutional condition encoder of that width feeds every block
    "cond_layers": 4,        # its time-dilated convolutions (dilations 1, 2, 4, 8)
    "gate": False,           # with residual: output = input * 2 sigmoid(g) + r (a per-bin gain; see Generator)
    "cond_relative": False,  # the condition encoder also reads the input relative to each band's utterance peak
}
INFERENCE_OPTIONS = ("psi", "noise_mode", "inference_seed")


@register("stylegan")
class StyleGANEnhancer(FrontEnd):
    """The reference enhancer: conditional StyleGAN2 generator + mapping network (with ``w_avg``).

    ``forward(x [B, n_bands, T] log-mel, lengths [B]) -> (y [B, n_bands, T] log-mel, lengths)``.
    In training mode latents and noise are random (style mixing with ``mixing_prob``), no truncation
    unless ``truncate_in_training``. In eval mode the latent is fixed (``inference_seed``), noise is
    ``noise_mode`` (zero by default) and w is truncated with ``psi``: deterministic and batch-consistent.
    Inference options can be changed after loading with :meth:`set_inference_options`.
    """

    domain = "logmel"
    trainable = True
    cpu_chunk_frames = 2000  # 2 cores: egs/mini's trained model 183x real time in chunks of 2000 frames, 102x in
                             # batches of 32 (specenh bench --sections frontends --batch-frames, 2026-12-07)
    cpu_channels_last = True  # 2 cores, egs/mini's model: 242x real time at batch 1, 136x in the default layout

    def __init__(self, **config: Any):
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"stylegan: unknown config keys {unknown}; known: {sorted(DEFAULTS)}")
        cfg = {**DEFAULTS, **config}
        super().__init__(**cfg)
        if not float(cfg["norm_max"]) > float(cfg["norm_min"]):
            raise ValueError("stylegan: norm_max must exceed norm_min")
        self.mapping = MappingNetwork(int(cfg["latent_dim"]), int(cfg["style_depth"]),
                                      lr_mul=float(cfg["mapping_lr_mul"]), w_avg_beta=float(cfg["w_avg_beta"]))
        self.generator = Generator(int(cfg["n_bands"]), int(cfg["latent_dim"]), int(cfg["capacity"]),
                                   int(cfg["fmap_max"]), cfg["n_blocks"], residual=bool(cfg["residual"]),
                                   refine_blocks=int(cfg["refine_blocks"]), refine_channels=cfg["refine_channels"],
                                   cond_channels=int(cfg["cond_channels"]), cond_layers=int(cfg["cond_layers"]),
                                   gate=bool(cfg["gate"]), cond_relative=bool(cfg["cond_relative"]))
        self.set_inference_options(**{k: cfg[k] for k in INFERENCE_OPTIONS})

    # ------------------------------------------------------------------ options
    def set_inference_options(self, **kw: Any) -> "StyleGANEnhancer":
        """Change inference options (``psi``, ``noise_mode``, ``inference_seed``); kept in ``config``
        so a re-saved model keeps them. Values may be strings (from a command line)."""
        unknown = sorted(set(kw) - set(INFERENCE_OPTIONS))
        if unknown:
            raise ValueError(f"stylegan: unknown inference options {unknown}; known: {list(INFERENCE_OPTIONS)}")
        if "psi" in kw:
            self.psi = float(kw["psi"])
        if "noise_mode" in kw:
            if kw["noise_mode"] not in ("zero", "random"):
                raise ValueError(f"noise_mode must be 'zero' or 'random', got {kw['noise_mode']!r}")
            self.noise_mode = str(kw["noise_mode"])
        if "inference_seed" in kw:
            self.inference_seed = int(kw["inference_seed"])
        self.config.update(psi=self.psi, noise_mode=self.noise_mode, inference_seed=self.inference_seed)
        return self

    @property
    def n_styles(self) -> int:
        return self.generator.n_styles

    # ------------------------------------------------------------------ normalisation
    def normalise(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log-mel [B, H, T] -> [B, 1, H, T] in [0, 1] for the fixed range, zero past lengths."""
        lo, hi = float(self.config["norm_min"]), float(self.config["norm_max"])
        return ((x - lo) / (hi - lo))[:, None] * time_mask(lengths, x.shape[-1], x.dtype)

    def denormalise(self, y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, 1, H, T] normalised -> log-mel [B, H, T], zero past lengths."""
        lo, hi = float(self.config["norm_min"]), float(self.config["norm_max"])
        return ((y * (hi - lo) + lo) * time_mask(lengths, y.shape[-1], y.dtype))[:, 0]

    # ------------------------------------------------------------------ styles
    def inference_latent(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The fixed latent z [1, latent] used at inference (same on every device)."""
        g = torch.Generator().manual_seed(self.inference_seed)
        return torch.randn(1, int(self.config["latent_dim"]), generator=g).to(device, self.mapping.w_avg.dtype)

    def styles(self, batch: int, device: torch.device, z: torch.Tensor | None = None, psi: float | None = None,
               update_w_avg: bool = False) -> list[torch.Tensor]:
        """Per-block styles (n_blocks x [B, latent]).

        Training mode with ``z`` None: random latents with style mixing. Eval mode with ``z`` None: the
        fixed inference latent. ``psi``: truncation (None: config psi in eval, none in training unless
        ``truncate_in_training``). ``update_w_avg``: update the running mean with the untruncated w.
        """
        n = self.n_styles
        if z is None and self.training:
            zs = torch.randn(2, batch, int(self.config["latent_dim"]), device=device, dtype=self.mapping.w_avg.dtype)
            w = self.mapping(zs.flatten(0, 1)).view(2, batch, -1)
            cut = n
            if n > 1 and float(torch.rand(())) < float(self.config["mixing_prob"]):
                cut = int(torch.randint(1, n, ()))
            if update_w_avg:
                self.mapping.update_w_avg(w[0] if cut == n else w.flatten(0, 1))
            ws = [w[0] if i < cut else w[1] for i in range(n)]
        else:
            if z is None:
                z = self.inference_latent(device)
            w = self.mapping(z.to(device, self.mapping.w_avg.dtype))
            if update_w_avg:
                self.mapping.update_w_avg(w)
            ws = [w] * n  # [1, latent] broadcasts over the batch (cheaper, and batch-independent numerics)
        if psi is None and (not self.training or self.config["truncate_in_training"]):
            psi = self.psi
        if psi is not None and psi != 1.0:
            ws = [self.mapping.truncate(w, psi) for w in ws]
        return ws

    # ------------------------------------------------------------------ forward
    def generate(self, xn: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None = None,
                 psi: float | None = None, noise_mode: str | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """Normalised domain: xn [B, 1, H, T] (from :meth:`normalise`) -> [B, 1, H, T] normalised, masked."""
        ws = self.styles(xn.shape[0], xn.device, z=z, psi=psi, update_w_avg=update_w_avg)
        if noise_mode is None:
            noise_mode = "random" if self.training else self.noise_mode
        return self.generator(xn, lengths, ws, noise_mode)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None = None,
                psi: float | None = None, noise_mode: str | None = None,
                **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, H, T] log-mel, lengths [B] -> (enhanced log-mel [B, H, T] zero past lengths, lengths)."""
        if x.dim() != 3 or x.shape[1] != int(self.config["n_bands"]):
            raise ValueError(f"stylegan expects [B, {self.config['n_bands']}, T] features, got {tuple(x.shape)}")
        lengths = lengths.to(x.device)
        y = self.generate(self.normalise(x, lengths), lengths, z=z, psi=psi, noise_mode=noise_mode)
        return self.denormalise(y, lengths), lengths
