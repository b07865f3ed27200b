"""Non-learned waveform front-ends: ``specsub``, ``wiener`` (Wiener or log-MMSE gain) and ``resample``.

``specsub`` and ``wiener`` work on the ASR's STFT grid (25 ms symmetric Hann, 10 ms hop, 512 FFT,
centred; :class:`specenh.vocoder.framing.Framing`), keep the noisy phase and resynthesise by weighted
overlap-add. They share a minimum-statistics style noise tracker (:func:`noise_psd`, after Martin
2001, simplified):

1. periodogram ``P = |Y|^2`` smoothed recursively over time, ``S_t = a S_{t-1} + (1 - a) P_t``
   (``a = 0.85``, ``S_0 = P_0``), computed exactly in chunks of matrix products (no frame loop);
2. the minimum of ``S`` over the last ``D`` frames (1.5 s), a causal sliding-window minimum
   (van Herk / Gil-Werman: two cumulative minima per block of ``D``, no frame loop);
3. bias compensation: the minimum of a smoothed periodogram underestimates the mean noise power.
   Martin derives the factor analytically; we calibrate it numerically instead, once per setting:
   ``B(t) = 1 / E[min_t / PSD]`` measured on stationary white Gaussian noise through the very same
   STFT, smoothing and window (fixed seed, so it is deterministic). ``B`` depends on ``t`` for the
   first ``D`` frames, where the window is still filling, and is constant after (about 2.6 at the
   defaults). On stationary noise the tracked PSD is then unbiased by construction (a test checks
   it within 1.5 dB); during long stretches of speech it rises, as every minimum tracker does.

Everything is causal in time, so padding after an utterance never reaches it: batched output equals
one-at-a-time output (the tests check 1e-4).

* ``specsub``: magnitude spectral subtraction with over-subtraction ``os`` and a spectral floor
  ``beta`` (Berouti et al. 1979, in magnitude): ``|X| = max(|Y| - os sqrt(N), beta |Y|)``.
* ``wiener``: decision-directed a-priori SNR (Ephraim & Malah 1984), ``alpha = 0.98``:
  ``xi_t = alpha |X_{t-1}|^2 / N_{t-1} + (1 - alpha) max(gamma_t - 1, 0)``, ``xi >= xi_min`` (-25 dB),
  ``gamma = |Y|^2 / N``; gain ``xi / (1 + xi)`` (``gain="wiener"``) or the log-spectral amplitude
  estimator (``gain="log-mmse"``, Ephraim & Malah 1985) ``xi / (1 + xi) exp(E1(v) / 2)``,
  ``v = xi gamma / (1 + xi)``, ``E1`` from ``scipy.special.exp1`` through a fine table; the gain is
  floored (-20 dB). The recursion needs the previous frame's estimate, so this one loops over
  frames (vector ops over batch and bins per frame).
* ``resample``: the non-learned reference row for bandwidth extension: resample down to
  ``2 * cutoff`` and back up with a proper anti-aliasing/anti-imaging filter (scipy's polyphase
  ``resample_poly``, Kaiser window; or soxr). It **adds no information**: its output is the input
  band-limited to ``cutoff``, i.e. what a system that only fixes the sample rate does. A learned
  ``bwe`` must beat it to count.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch

from specenh.features.logmel import FeatureConfig
from specenh.frontends.base import FrontEnd, register
from specenh.vocoder.framing import Framing, frame_mask

_POWER_FLOOR = 1e-12


def stft_config(sample_rate: int = 16000) -> FeatureConfig:
    """The ASR framing at ``sample_rate``: 25 ms window, 10 ms hop, next power-of-two FFT."""
    win = int(0.025 * sample_rate)
    return FeatureConfig(sample_rate=sample_rate, n_fft=1 << (win - 1).bit_length())


# -------------------------------------------------------------------------------------- noise tracker
def recursive_smooth(x: torch.Tensor, alpha: float, init: torch.Tensor | None = None, chunk: int = 64) -> torch.Tensor:
    """``s_t = alpha s_{t-1} + (1 - alpha) x_t`` along the last axis, ``s_{-1} = init`` (default
    ``x_0``); exact, one [chunk x chunk] matrix product per chunk of frames (carrying over)."""
    t = x.shape[-1]
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    idx = torch.arange(chunk, device=x.device, dtype=torch.float64)
    j, i = idx[:, None], idx[None, :]  # input j contributes (1 - alpha) alpha^(i - j) to output i >= j
    k = torch.where(j <= i, (1 - alpha) * alpha ** (i - j).clamp(min=0), torch.zeros(())).to(dt)
    carry_w = (alpha ** (idx + 1)).to(dt)  # weight of s_{c0-1} in output c0+i
    out = torch.empty_like(x, dtype=dt)
    prev = (x[..., 0] if init is None else init).to(dt)
    for c0 in range(0, t, chunk):
        c1 = min(c0 + chunk, t)
        n = c1 - c0
        seg = torch.matmul(x[..., c0:c1].to(dt), k[:n, :n]) + prev[..., None] * carry_w[:n]
        out[..., c0:c1] = seg
        prev = seg[..., -1]
    return out


def sliding_min(x: torch.Tensor, window: int) -> torch.Tensor:
    """Causal running minimum over the last ``window`` values (fewer at the start) along the last
    axis, by van Herk / Gil-Werman: prefix and suffix cumulative minima per block."""
    if window <= 1:
        return x
    t = x.shape[-1]
    big = torch.finfo(x.dtype).max
    xp = torch.nn.functional.pad(x, (window - 1, 0), value=big)
    total = xp.shape[-1]
    nblk = math.ceil(total / window)
    xp = torch.nn.functional.pad(xp, (0, nblk * window - total), value=big)
    blocks = xp.reshape(*x.shape[:-1], nblk, window)
    g = torch.cummin(blocks, dim=-1).values.reshape(*x.shape[:-1], -1)  # prefix minima
    h = torch.cummin(blocks.flip(-1), dim=-1).values.flip(-1).reshape(*x.shape[:-1], -1)  # suffix minima
    start = torch.arange(t, device=x.device)  # window [s, s + window - 1] in padded coordinates
    return torch.minimum(h[..., start], g[..., start + window - 1])


@lru_cache(maxsize=16)
def _bias_table(cfg: FeatureConfig, alpha: float, window: int) -> torch.Tensor:
    """1 / E[tracked minimum / true PSD] for frames 0..window-1 and (last entry) the steady state,
    measured on stationary white Gaussian noise (fixed seed)."""
    g = torch.Generator().manual_seed(1234)
    reps, frames = 16, 3 * window
    noise = torch.randn(reps, frames * cfg.hop_length, generator=g, dtype=torch.float64)
    fr = Framing(cfg, reps, noise.shape[1], device="cpu", dtype=torch.float64)
    p = fr.stft(noise).abs().square()[:, 1:-1, :frames]  # DC / Nyquist (chi2(1)) left out
    psd = float(fr.win_padded.square().sum())  # E|Y_k|^2 of unit white noise
    m = sliding_min(_smooth(p, alpha, None), window) / psd
    ratio = m.mean(dim=(0, 1))  # [frames]
    steady = ratio[2 * window:].mean()  # once the start-up frames have left the window
    table = torch.cat([ratio[: window - 1], steady[None]])
    return (1.0 / table).float()


def _first_frame_fix(power: torch.Tensor) -> torch.Tensor:
    """Frame 0 is centred on sample 0, so half its window lies in the zero padding (about half the
    power); left in, it would drag the running minimum down for a whole window. The tracker uses
    frame 1's periodogram in its place."""
    if power.shape[-1] < 2:
        return power
    return torch.cat([power[..., 1:2], power[..., 1:]], dim=-1)


_INIT_FRAMES = 10


def _smooth(power: torch.Tensor, alpha: float, frames: torch.Tensor | None) -> torch.Tensor:
    """The tracker's smoothed periodogram: frame 0 replaced by frame 1 (:func:`_first_frame_fix`) and
    the recursion started from the mean of the first 10 frames (100 ms; fewer in shorter utterances),
    so that its first values are not single periodogram samples, whose low outliers would hold the
    running minimum down for a whole window."""
    p = _first_frame_fix(power)
    t = p.shape[-1]
    m = torch.arange(t, device=p.device) < _INIT_FRAMES
    if frames is not None:
        m = m[None, :] & (torch.arange(t, device=p.device)[None, :] < frames.to(p.device)[:, None])
        m = m[:, None, :]
    m = m.to(p.dtype)
    init = (p * m).sum(-1) / m.sum(-1).clamp(min=1)
    return recursive_smooth(p, alpha, init)


def noise_psd(power: torch.Tensor, cfg: FeatureConfig, *, alpha: float = 0.85, window_s: float = 1.5,
              frames: torch.Tensor | None = None) -> torch.Tensor:
    """Minimum-statistics noise PSD [B, F, T] of a periodogram [B, F, T] (see the module doc);
    ``frames`` [B]: valid frames per utterance (only used for the start-up mean)."""
    window = max(1, int(round(window_s * cfg.sample_rate / cfg.hop_length)))
    smooth = _smooth(power, alpha, frames)
    mins = sliding_min(smooth, window)
    bias = _bias_table(cfg, float(alpha), window).to(power.device)
    t = power.shape[-1]
    idx = torch.clamp(torch.arange(t, device=power.device), max=window - 1)
    return (mins * bias[idx]).clamp(min=_POWER_FLOOR).to(power.dtype)


# ------------------------------------------------------------------------------ log-MMSE gain table
_LSA_LOGV = np.linspace(np.log(1e-10), np.log(80.0), 8192)


@lru_cache(maxsize=1)
def _lsa_table() -> np.ndarray:
    """log of exp(E1(v) / 2) = E1(v) / 2 on a log-spaced grid of v (scipy.special.exp1, exact at the
    nodes); linear interpolation in log v is accurate to ~1e-7 relative (a test checks 1e-5)."""
    from scipy.special import exp1

    return 0.5 * exp1(np.exp(_LSA_LOGV))


def lsa_factor(v: np.ndarray) -> np.ndarray:
    """``exp(E1(v) / 2)``, the log-spectral-amplitude correction of the Wiener gain; 1 beyond v = 80
    (E1(80) < 1e-36)."""
    logv = np.log(np.clip(v, 1e-10, None))
    return np.exp(np.interp(logv, _LSA_LOGV, _lsa_table(), right=0.0))


# ------------------------------------------------------------------------------------ front-ends
class _StftEnhancer(FrontEnd):
    """Shared plumbing: STFT with per-utterance masks -> gain -> weighted overlap-add."""

    domain = "wave"
    trainable = False

    def __init__(self, sample_rate: int = 16000, smoothing: float = 0.85, window_s: float = 1.5, **config):
        super().__init__(sample_rate=sample_rate, smoothing=smoothing, window_s=window_s, **config)
        self.cfg = stft_config(int(sample_rate))
        self.smoothing, self.window_s = float(smoothing), float(window_s)

    def gain(self, power: torch.Tensor, noise: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2:
            raise ValueError(f"{self.name}: waveform batch must be [B, N], got {tuple(x.shape)}")
        lengths = lengths.to(x.device)
        fr = Framing(self.cfg, x.shape[0], x.shape[1], lengths, device=x.device, dtype=torch.float32)
        spec = fr.stft(x.float())
        power = spec.real.square() + spec.imag.square()
        valid = frame_mask(fr.frames, x.shape[0], spec.shape[-1], x.device)
        noise = noise_psd(power, self.cfg, alpha=self.smoothing, window_s=self.window_s, frames=fr.frames)
        g = self.gain(power, noise, valid)
        y = fr.istft(spec * g)
        return y.to(x.dtype), lengths


@register("specsub")
class SpectralSubtraction(_StftEnhancer):
    """Magnitude spectral subtraction: ``|X| = max(|Y| - os sqrt(N), beta |Y|)``, noisy phase."""

    def __init__(self, over_subtraction: float = 1.5, floor: float = 0.1, sample_rate: int = 16000,
                 smoothing: float = 0.85, window_s: float = 1.5):
        super().__init__(sample_rate=sample_rate, smoothing=smoothing, window_s=window_s,
                         over_subtraction=over_subtraction, floor=floor)
        if over_subtraction < 0 or not 0 <= floor <= 1:
            raise ValueError(f"specsub needs over_subtraction >= 0 and 0 <= floor <= 1, "
                             f"got {over_subtraction}, {floor}")
        self.os, self.floor = float(over_subtraction), float(floor)

    def gain(self, power, noise, valid):
        return (1.0 - self.os * (noise / power.clamp(min=_POWER_FLOOR)).sqrt()).clamp(min=self.floor)


@register("wiener")
class WienerFilter(_StftEnhancer):
    """Decision-directed Wiener (``gain="wiener"``) or log-MMSE/LSA (``gain="log-mmse"``) estimator."""

    GAINS = ("wiener", "log-mmse")

    def __init__(self, gain: str = "wiener", alpha: float = 0.98, xi_min_db: float = -25.0,
                 gain_floor_db: float = -20.0, sample_rate: int = 16000, smoothing: float = 0.85,
                 window_s: float = 1.5):
        super().__init__(sample_rate=sample_rate, smoothing=smoothing, window_s=window_s, gain=gain, alpha=alpha,
                         xi_min_db=xi_min_db, gain_floor_db=gain_floor_db)
        if gain not in self.GAINS:
            raise ValueError(f"unknown wiener gain {gain!r}: {' | '.join(self.GAINS)}")
        if not 0 <= alpha < 1:
            raise ValueError(f"decision-directed alpha must be in [0, 1), got {alpha}")
        self.kind, self.alpha = gain, float(alpha)
        self.xi_min = 10 ** (xi_min_db / 10)
        self.g_min = 10 ** (gain_floor_db / 20)

    def gain(self, power, noise, valid):
        # the decision-directed recursion is sequential over frames: numpy per frame (cheaper per op
        # than torch at [B, F]); every frame is one vector step over batch and bins
        gamma = (power / noise).clamp(max=1e6).permute(2, 0, 1).double().cpu().numpy()  # [T, B, F]
        post = np.maximum(gamma - 1.0, 0.0)
        out = np.empty_like(gamma)
        prev = None  # |X_{t-1}|^2 / N_{t-1}
        a, lsa = self.alpha, self.kind == "log-mmse"
        for t in range(gamma.shape[0]):
            xi = post[t] if prev is None else a * prev + (1.0 - a) * post[t]
            np.maximum(xi, self.xi_min, out=xi)
            g = xi / (1.0 + xi)
            if lsa:
                g = g * lsa_factor(g * gamma[t])
            np.maximum(g, self.g_min, out=g)
            out[t] = g
            prev = g * g * gamma[t]
        return torch.from_numpy(out).permute(1, 2, 0).to(power.device, power.dtype)


def estimate_cutoff_hz(x: np.ndarray, sample_rate: int, drop_db: float = 50.0, step_hz: float = 250.0) -> float:
    """Upper band edge of a signal [N]: the highest frequency whose long-term power (Welch, 512-point
    segments) lies within ``drop_db`` of the spectrum's peak, rounded up to a multiple of ``step_hz``;
    the Nyquist frequency for a full-band signal."""
    from scipy.signal import welch

    nyq = sample_rate / 2
    if x.size < 512 or not np.any(x):
        return nyq
    f, pxx = welch(x, fs=sample_rate, nperseg=512)
    db = 10 * np.log10(pxx + 1e-30)
    above = np.nonzero(db > db.max() - drop_db)[0]
    fc = float(f[above[-1]]) if above.size else nyq
    return min(nyq, step_hz * math.ceil(fc / step_hz))


@register("resample")
class Resample(FrontEnd):
    """Down to ``2 * cutoff`` Hz and back up (anti-aliased / anti-imaged). Adds no information: the
    honest reference row for ``bwe``. ``cutoff``: Hz, or None (default) for the input's own band edge,
    estimated per utterance (:func:`estimate_cutoff_hz`): band-limited input then passes through the
    same down/up chain as ``bwe``'s input would, full-band input is left alone. ``method``: "poly" (scipy
    ``resample_poly``) or "soxr" (very high quality)."""

    domain = "wave"
    trainable = False

    def __init__(self, cutoff: float | None = None, sample_rate: int = 16000, method: str = "poly",
                 drop_db: float = 50.0):
        super().__init__(cutoff=cutoff, sample_rate=sample_rate, method=method, drop_db=drop_db)
        if method not in ("poly", "soxr"):
            raise ValueError(f"unknown resample method {method!r}: poly | soxr")
        if cutoff is not None and cutoff <= 0:
            raise ValueError(f"cutoff must be > 0 Hz or None (estimated), got {cutoff}")
        self.sr, self.method, self.drop_db = int(sample_rate), method, float(drop_db)
        self.cutoff = None if cutoff is None else float(cutoff)

    def _one(self, row: np.ndarray, cutoff: float) -> np.ndarray:
        """Resample one utterance [N] down to 2 * cutoff and back; same length."""
        low_sr = Fraction(2 * cutoff).limit_denominator(1000)
        n = row.shape[0]
        if low_sr >= self.sr or n == 0:
            return row
        ratio = low_sr / self.sr
        if self.method == "poly":
            from scipy.signal import resample_poly

            # zeros after the signal keep the whole filter tail of its last samples
            # (the default filter spans 10 * max(up, down))
            pad = 32 * max(ratio.numerator, ratio.denominator)
            low = resample_poly(np.pad(row, (0, pad)), ratio.numerator, ratio.denominator)
            y = resample_poly(low, ratio.denominator, ratio.numerator)
        else:
            import soxr

            y = soxr.resample(soxr.resample(row, self.sr, float(low_sr), quality="VHQ"), float(low_sr), self.sr,
                              quality="VHQ")
        return y[:n] if y.shape[0] >= n else np.pad(y, (0, n - y.shape[0]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2:
            raise ValueError(f"resample: waveform batch must be [B, N], got {tuple(x.shape)}")
        xn = x.detach().cpu().double().numpy()
        y = np.zeros_like(xn)
        for i in range(xn.shape[0]):  # one utterance at a time: cut-offs (and so ratios) differ
            li = int(lengths[i])
            row = xn[i, :li]
            fc = self.cutoff if self.cutoff is not None else estimate_cutoff_hz(row, self.sr, self.drop_db)
            y[i, :li] = self._one(row, fc)
        return torch.from_numpy(y).to(x.device, x.dtype), lengths


__all__ = ["SpectralSubtraction", "WienerFilter", "Resample", "estimate_cutoff_hz", "noise_psd", "recursive_smooth", "sliding_min",
           "lsa_factor", "stft_config"]
