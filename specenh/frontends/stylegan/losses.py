"""Losses of the StyleGAN enhancer: contextual loss, hinge/adversarial losses, R1 penalty,
consistency loss, and helpers to turn spectrograms into contextual-loss features.

The contextual loss (Mechrez et al., 2018) compares two *sets* of feature vectors, so it needs no
alignment between generated and target positions. For generated positions i and target positions j:

    centre both sets on the target mean (over the target's valid positions),
    d_ij   = 1 - cos(x_i, y_j)                         (all pairs)
    d~_ij  = d_ij / (min_k d_ik + eps)                  (relative to the closest target)
    w_ij   = exp((1 - d~_ij) / h)
    CX_ij  = w_ij / sum_k w_ik                          (normalised over targets)
    CX     = mean_j max_i CX_ij                         (max over generated, mean over targets)
    loss   = -log CX

Padded positions (past ``x_lengths`` / ``y_lengths``) take no part anywhere.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _lengths(lengths: torch.Tensor | None, b: int, n: int, device: torch.device) -> torch.Tensor:
    if lengths is None:
        return torch.full((b,), n, dtype=torch.long, device=device)
    return lengths.to(device=device, dtype=torch.long).clamp(0, n)


def subsample_positions(f: torch.Tensor, lengths: torch.Tensor, max_positions: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep at most ``max_positions`` random valid positions per item.

    f [B, C, N], lengths [B] -> (f' [B, C, M], lengths' [B]) with M = min(N, max_positions); the kept
    valid positions come first (in random order), lengths' = min(lengths, M).
    """
    b, c, n = f.shape
    if n <= max_positions:
        return f, lengths
    r = torch.rand(b, n, generator=generator, device=generator.device if generator is not None else f.device)
    r = r.to(f.device)
    r = r.masked_fill(torch.arange(n, device=f.device)[None, :] >= lengths[:, None], 2.0)  # padding last
    idx = r.argsort(dim=1)[:, :max_positions]
    return f.gather(2, idx[:, None, :].expand(b, c, max_positions)), lengths.clamp_max(max_positions)


def contextual_loss(x: torch.Tensor, y: torch.Tensor, h: float = 0.5, x_lengths: torch.Tensor | None = None,
                    y_lengths: torch.Tensor | None = None, max_positions: int | None = 1024, eps: float = 1e-5,
                    generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    """Contextual loss between generated features x [B, C, Nx] and target features y [B, C, Ny].

    Args:
        h: bandwidth (smaller: sharper matching).
        x_lengths, y_lengths: valid positions per item (None: all).
        max_positions: random subsampling of each set to at most this many valid positions (bounds the
            Nx x Ny memory); None or 0: no subsampling.
        eps: added to the row minimum of the distances.
        generator: random generator for the subsampling (a CPU generator).
        reduction: "mean" over the batch, or "none" for the per-item losses [B].

    Computed in float32 (at least). Items with no valid position contribute 0.
    """
    if x.dim() != 3 or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"contextual_loss expects x [B, C, Nx] and y [B, C, Ny], "
                         f"got {tuple(x.shape)}, {tuple(y.shape)}")
    with torch.autocast(x.device.type, enabled=False):  # relative distances need full precision
        return _contextual_loss(x, y, h, x_lengths, y_lengths, max_positions, eps, generator, reduction)


def _contextual_loss(x, y, h, x_lengths, y_lengths, max_positions, eps, generator, reduction) -> torch.Tensor:
    dt = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dt), y.to(dt)
    b, _, nx = x.shape
    ny = y.shape[2]
    xl = _lengths(x_lengths, b, nx, x.device)
    yl = _lengths(y_lengths, b, ny, x.device)
    if max_positions:
        x, xl = subsample_positions(x, xl, int(max_positions), generator)
        y, yl = subsample_positions(y, yl, int(max_positions), generator)
        nx, ny = x.shape[2], y.shape[2]
    xm = torch.arange(nx, device=x.device)[None, :] < xl[:, None]  # [B, Nx]
    ym = torch.arange(ny, device=x.device)[None, :] < yl[:, None]  # [B, Ny]
    mu = (y * ym[:, None, :]).sum(dim=2, keepdim=True) / yl.clamp_min(1)[:, None, None].to(dt)  # [B, C, 1]
    xc = F.normalize(x - mu, dim=1)
    yc = F.normalize(y - mu, dim=1)
    d = (1.0 - torch.bmm(xc.transpose(1, 2), yc)).clamp_min(0.0)  # [B, Nx, Ny] cosine distances
    ymask = ym[:, None, :]
    d_min = d.masked_fill(~ymask, float("inf")).amin(dim=2, keepdim=True)  # closest target per generated
    d_rel = d / (d_min + eps)
    logits = ((1.0 - d_rel) / h).masked_fill(~ymask, float("-inf"))
    cx = torch.softmax(logits, dim=2)  # exp(.) normalised over targets
    cx = cx.masked_fill(~xm[:, :, None], 0.0).nan_to_num(0.0)  # padded generated rows (and empty items)
    cx_j = cx.amax(dim=1)  # [B, Ny]: max over generated positions
    cx_mean = (cx_j * ym).sum(dim=1) / yl.clamp_min(1).to(dt)
    valid = (xl > 0) & (yl > 0)
    loss = torch.where(valid, -torch.log(cx_mean.clamp_min(1e-30)), torch.zeros_like(cx_mean))
    if reduction == "none":
        return loss
    return loss.sum() / valid.sum().clamp_min(1)


def logmel_patches(spec: torch.Tensor, lengths: torch.Tensor, bands: int | None = None, frames: int = 4,
                   band_stride: int | None = None, frame_stride: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches of a spectrogram as contextual-loss features (the no-ASR option).

    spec [B, H, T] or [B, 1, H, T], lengths [B] -> (features [B, bands * frames, N], lengths [B]).
    Patches of ``bands`` x ``frames`` (default: all bands, i.e. a few whole frames) with strides
    (``band_stride`` (default bands // 2), ``frame_stride``). Positions are time-major, so the valid ones
    (patches starting inside the utterance and fitting in it, at least one per item) come first.
    """
    if spec.dim() == 3:
        spec = spec[:, None]
    b, _, h, t = spec.shape
    bands = min(int(bands or h), h)
    band_stride = int(band_stride or max(1, bands // 2))
    if t < frames:
        spec = F.pad(spec, (0, frames - t))
        t = frames
    p = F.unfold(spec, (bands, frames), stride=(band_stride, frame_stride))  # [B, bands*frames, Lf*Lt]
    lf = (h - bands) // band_stride + 1
    lt = (t - frames) // frame_stride + 1
    p = p.view(b, p.shape[1], lf, lt).transpose(2, 3).reshape(b, p.shape[1], lt * lf)
    valid_t = torch.div(lengths.to(p.device) - frames, frame_stride, rounding_mode="floor") + 1
    return p, valid_t.clamp(1, lt) * lf


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss: -mean D(G(x))."""
    return -fake_logits.mean()


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """R1: mean over the batch of ||d D(real) / d real||^2 (``real`` must require grad; the graph is kept
    so the penalty can be back-propagated)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def masked_l1(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over valid frames (last axis) and all other non-batch axes. a, b [B, ..., T]."""
    m = (torch.arange(a.shape[-1], device=a.device)[None, :] < lengths.to(a.device)[:, None]).to(a.dtype)
    m = m.view(m.shape[0], *([1] * (a.dim() - 2)), m.shape[1])
    per = a[0, ..., 0].numel()  # elements per frame
    return ((a - b).abs() * m).sum() / (m.sum() * per).clamp_min(1)


def consistency_loss(x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """L1 between input and output after averaging the frequency axis down to ``bins`` bands,
    length-normalised (mean over valid frames). x, y [B, H, T] or [B, 1, H, T] (normalised domain)."""
    if x.dim() == 4:
        x, y = x[:, 0], y[:, 0]
    xd = F.adaptive_avg_pool1d(x.transpose(1, 2), bins).transpose(1, 2)  # [B, bins, T]
    yd = F.adaptive_avg_pool1d(y.transpose(1, 2), bins).transpose(1, 2)
    return masked_l1(xd, yd, lengths)
