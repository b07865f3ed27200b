"""Signal metrics of an enhanced waveform against its clean reference.

=========  ==========================================================================  =========
metric     definition                                                                   better
=========  ==========================================================================  =========
pesq       ITU-T P.862.2 wide-band MOS-LQO at 16 kHz, P.862 narrow-band at 8 kHz         higher
           (``pesq`` package; other rates raise ValueError; "no utterance detected" and
           "buffer too short" give NaN, counted as missing, never a crash)
stoi       short-time objective intelligibility (``pystoi``; it resamples to 10 kHz,     higher
           so content above ~4.5 kHz is ignored); NaN where pystoi finds too few
           speech frames (it would return 1e-5)
estoi      extended STOI (``pystoi``, ``extended=True``)                                 higher
si_sdr     scale-invariant SDR in dB (Le Roux et al. 2019): both signals made zero-mean, higher
           ``a = <est, ref> / |ref|^2``, ``10 log10(|a ref|^2 / |a ref - est|^2)``
sdr        plain SDR in dB, ``10 log10(|ref|^2 / |ref - est|^2)`` (no scaling: the level   higher
           matters, so the reference must be at the level the estimate should have)
lsd        log-spectral distance in dB: STFT (25 ms periodic Hann, 10 ms hop, next         lower
           power-of-two FFT), ``L = 10 log10(|X|^2 + 1e-8)`` per bin, per frame
           ``sqrt(mean_bins (L_ref - L_est)^2)``, mean over frames
=========  ==========================================================================  =========

SDR and SI-SDR are capped at 100 dB (error energy floored at 1e-10 of the target energy), so a
perfect copy gives 100 dB rather than inf and means stay finite.

Lengths: signals whose lengths differ by less than 10 ms are trimmed to the shorter (logged; the
vocoder's output is the input length rounded down to a whole 10 ms hop); a larger difference raises
ValueError naming both lengths. Different sample rates raise ValueError.

:func:`compute_all` returns every metric; :func:`delta` the improvement of a system over the
unprocessed input (``system - input``; for ``lsd`` a negative delta is an improvement);
:func:`summarize` means over utterances ignoring NaN, with the count of missing values.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

METRICS = ("pesq", "stoi", "estoi", "si_sdr", "sdr", "lsd")
HIGHER_IS_BETTER = {"pesq": True, "stoi": True, "estoi": True, "si_sdr": True, "sdr": True, "lsd": False}
UNITS = {"pesq": "MOS-LQO", "stoi": "0-1", "estoi": "0-1", "si_sdr": "dB", "sdr": "dB", "lsd": "dB"}
MAX_DB = 100.0
LSD_POWER_FLOOR = 1e-8  # ~ STFT power of 16-bit quantisation noise with a 25 ms Hann window
ALIGN_TOLERANCE_S = 0.010


def _as_1d(x, name: str, keep_dtype: bool = False) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not keep_dtype or x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D waveform, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def align(ref, est, sr: int, est_sr: int | None = None, utt: str | None = None,
          tolerance_s: float = ALIGN_TOLERANCE_S, keep_dtype: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Check rates, convert to 1-D float64 (float32 input stays float32 with ``keep_dtype``: the
    packages then see exactly what a direct call would give them) and trim to the shorter length
    when the lengths differ by less than ``tolerance_s`` (10 ms); otherwise raise ValueError naming
    both lengths."""
    who = f" (utterance {utt!r})" if utt else ""
    if est_sr is not None and int(est_sr) != int(sr):
        raise ValueError(f"sample rates differ{who}: reference {sr} Hz, estimate {est_sr} Hz; resample first")
    ref, est = _as_1d(ref, "reference", keep_dtype), _as_1d(est, "estimate", keep_dtype)
    if len(ref) != len(est):
        diff = abs(len(ref) - len(est))
        if diff >= tolerance_s * sr:
            raise ValueError(f"lengths differ by {diff / sr * 1000:.1f} ms{who}: reference {len(ref)} samples, "
                             f"estimate {len(est)} samples (at {sr} Hz; at most {tolerance_s * 1000:g} ms is aligned)")
        log.debug("trimming%s: reference %d and estimate %d samples -> %d", who, len(ref), len(est),
                  min(len(ref), len(est)))
        n = min(len(ref), len(est))
        ref, est = ref[:n], est[:n]
    return ref, est


# --------------------------------------------------------------------------------------- metrics
def pesq_score(ref, est, sr: int, mode: str | None = None, utt: str | None = None) -> float:
    """PESQ (``wb`` at 16 kHz, ``nb`` at 8 kHz by default). NaN when PESQ finds no utterance or the
    signal is too short (logged as missing)."""
    if int(sr) not in (8000, 16000):
        raise ValueError(f"PESQ is defined at 8000 or 16000 Hz only, got {sr} Hz; resample first")
    mode = mode or ("wb" if int(sr) == 16000 else "nb")
    if mode not in ("wb", "nb") or (mode == "wb" and int(sr) == 8000):
        raise ValueError(f"PESQ mode {mode!r} is not available at {sr} Hz (wb needs 16 kHz; nb works at both)")
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    ref, est = align(ref, est, sr, utt=utt, keep_dtype=True)
    if not np.any(ref) or not np.any(est):
        log.warning("PESQ%s: silent %s signal; reported as missing", f" of {utt!r}" if utt else "",
                    "reference" if not np.any(ref) else "estimated")
        return math.nan
    try:
        return float(pesq(int(sr), ref, est, mode))
    except (NoUtterancesError, BufferTooShortError) as e:
        log.warning("PESQ%s: %s; reported as missing", f" of {utt!r}" if utt else "", type(e).__name__)
        return math.nan


def stoi_score(ref, est, sr: int, extended: bool = False, utt: str | None = None) -> float:
    """STOI / ESTOI (``pystoi``); NaN when pystoi finds too few non-silent frames."""
    from pystoi import stoi

    ref, est = align(ref, est, sr, utt=utt, keep_dtype=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(ref, est, int(sr), extended=extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        log.warning("%s%s: too few speech frames; reported as missing", "ESTOI" if extended else "STOI",
                    f" of {utt!r}" if utt else "")
        return math.nan
    return value


def _ratio_db(target_energy: float, error_energy: float) -> float:
    if target_energy <= 0:
        return math.nan
    return float(10 * np.log10(target_energy / max(error_energy, target_energy * 10 ** (-MAX_DB / 10))))


def sdr(ref, est, sr: int | None = None) -> float:
    """``10 log10(|ref|^2 / |ref - est|^2)`` in dB (capped at 100 dB; NaN for a silent reference)."""
    if sr is not None:
        ref, est = align(ref, est, sr)
    else:
        ref, est = _as_1d(ref, "reference"), _as_1d(est, "estimate")
        if len(ref) != len(est):
            raise ValueError(f"lengths differ: reference {len(ref)}, estimate {len(est)} samples")
    return _ratio_db(float(np.dot(ref, ref)), float(np.sum((ref - est) ** 2)))


def si_sdr(ref, est, sr: int | None = None, zero_mean: bool = True) -> float:
    """Scale-invariant SDR in dB: ``a = <est, ref> / |ref|^2``, ``10 log10(|a ref|^2 / |a ref - est|^2)``,
    after removing the means (``zero_mean``); capped at 100 dB."""
    if sr is not None:
        ref, est = align(ref, est, sr)
    else:
        ref, est = _as_1d(ref, "reference"), _as_1d(est, "estimate")
        if len(ref) != len(est):
            raise ValueError(f"lengths differ: reference {len(ref)}, estimate {len(est)} samples")
    if zero_mean:
        ref, est = ref - ref.mean(), est - est.mean()
    energy = float(np.dot(ref, ref))
    if energy <= 0:
        return math.nan
    target = (float(np.dot(est, ref)) / energy) * ref
    return _ratio_db(float(np.dot(target, target)), float(np.sum((target - est) ** 2)))


def log_power_spectrogram(x: np.ndarray, sr: int) -> np.ndarray:
    """``10 log10(|STFT|^2 + 1e-8)`` [T, F] with 25 ms / 10 ms framing (the LSD's spectra)."""
    from specenh.dsp.stft import StftConfig, stft_np

    spec = stft_np(x, StftConfig.for_rate(int(sr)))
    return 10.0 * np.log10(np.abs(spec.T) ** 2 + LSD_POWER_FLOOR)


def lsd(ref, est, sr: int) -> float:
    """Log-spectral distance in dB: mean over frames of ``sqrt(mean over bins (L_ref - L_est)^2)``."""
    ref, est = align(ref, est, sr)
    d = log_power_spectrogram(ref, sr) - log_power_spectrogram(est, sr)
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=1))))


def compute_all(ref, est, sr: int, est_sr: int | None = None, metrics: Sequence[str] = METRICS,
                utt: str | None = None) -> dict[str, float]:
    """Every metric in ``metrics`` for one utterance (aligned as :func:`align` does)."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {list(METRICS)}")
    ref, est = align(ref, est, sr, est_sr, utt=utt, keep_dtype=True)
    out: dict[str, float] = {}
    for m in metrics:
        if m == "pesq":
            out[m] = pesq_score(ref, est, sr, utt=utt)
        elif m == "stoi":
            out[m] = stoi_score(ref, est, sr, utt=utt)
        elif m == "estoi":
            out[m] = stoi_score(ref, est, sr, extended=True, utt=utt)
        elif m == "si_sdr":
            out[m] = si_sdr(ref, est)
        elif m == "sdr":
            out[m] = sdr(ref, est)
        elif m == "lsd":
            out[m] = lsd(ref, est, sr)
    return out


def delta(system: Mapping[str, float], unprocessed: Mapping[str, float]) -> dict[str, float]:
    """``system - unprocessed`` per metric present in both (NaN if either is NaN). Positive is better
    for every metric but ``lsd`` (see ``HIGHER_IS_BETTER``)."""
    return {k: float(system[k]) - float(unprocessed[k]) for k in system if k in unprocessed}


def summarize(rows: Iterable[Mapping[str, float]], metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """``{metric: {"mean": nan-mean, "count": finite values, "missing": NaN values}}``."""
    rows = list(rows)
    out: dict[str, dict[str, float]] = {}
    for m in metrics:
        vals = np.array([float(r[m]) for r in rows if m in r], dtype=np.float64)
        ok = vals[np.isfinite(vals)]
        out[m] = {"mean": float(ok.mean()) if ok.size else math.nan, "count": int(ok.size),
                  "missing": int(vals.size - ok.size)}
    return out


__all__ = ["METRICS", "HIGHER_IS_BETTER", "UNITS", "align", "pesq_score", "stoi_score", "sdr", "si_sdr", "lsd",
           "log_power_spectrogram", "compute_all", "delta", "summarize"]
