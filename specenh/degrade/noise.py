"""Additive noise at a target SNR, from noise-corpus files or built-in procedural generators.

SNR definition (default ``weighting: whole``): ``10 log10(P_speech / P_noise)`` with both powers
the mean square over the **whole utterance**, pauses included. ``weighting: active`` measures the
speech power over active 20 ms frames only (within 40 dB of the loudest frame) and the noise power
over the whole utterance; that gives a lower effective SNR for utterances with long pauses.

Sources (``source``; a list picks one per utterance, uniformly):

* ``files``: audio files found recursively under ``noise_dir`` (``.wav``, ``.flac``, ``.ogg``;
  ``glob`` narrows the search, e.g. ``"*/ch01.wav"`` for DEMAND so the 16 microphones of one scene
  count once). A random segment is taken, looped from a random offset if the file is too short,
  mixed to mono and resampled to the utterance's rate.
* procedural: ``white``, ``pink`` (1/f power), ``brown`` (1/f^2 power, high-passed at 20 Hz),
  ``hum`` (50 or 60 Hz mains fundamental + decaying harmonics), ``bursts`` (non-stationary: noise
  bursts of 30–400 ms with random colour and level over a -30 dB floor), ``babble`` (sum of
  ``talkers`` other utterances of the data dir being degraded, each at unit RMS).

Train/test disjointness (``split``, set by stage 2):

* ``files``: ``noise_dir`` may be a mapping ``{train: DIR, test: DIR}``: every file of the split's own folder
  (disjoint by construction: e.g. the real training and test noises of ``../shared/data/noise_real``);
  MS-SNSD-style roots (with ``noise_train/`` and ``noise_test/``) use their own folders;
  otherwise each file (or its parent folder, with ``split_unit: dir``) goes to test when a hash of
  its path relative to ``noise_dir`` falls below ``test_fraction``, else to train. The assignment
  depends only on the relative path, so it is the same on every machine.
* procedural noises draw from a generator seeded with ``2 k`` (train) or ``2 k + 1`` (test), ``k``
  drawn from the utterance RNG: the two seed spaces are disjoint, so no train noise signal can
  occur in test. Babble uses utterances of the data dir being degraded, i.e. the train set's
  speakers for train and the test set's for test.
"""
from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import soundfile as sf

from specenh.data.audio import AudioError, load_audio, resample
from specenh.degrade.registry import (
    as_wave,
    check_split,
    check_wave,
    draw_value,
    power,
    register,
)
from specenh.utils.seed import stable_seed

log = logging.getLogger(__name__)

PROCEDURAL = ("white", "pink", "brown", "hum", "bursts", "babble")
SOURCES = PROCEDURAL + ("files",)
AUDIO_EXTS = (".wav", ".flac", ".ogg")
MSSNSD_DIRS = {"train": "noise_train", "test": "noise_test"}


# ---------------------------------------------------------------- SNR


def speech_power(wave: np.ndarray, sr: int, weighting: str = "whole") -> float:
    """Mean-square power of ``wave`` [N]: over all samples (``whole``) or active frames (``active``)."""
    if weighting == "whole":
        return power(wave)
    if weighting != "active":
        raise ValueError(f"weighting must be 'whole' or 'active', got {weighting!r}")
    flen = max(1, int(0.02 * sr))
    n = len(wave) // flen
    if n == 0:
        return power(wave)
    fr = np.square(wave[: n * flen].astype(np.float64)).reshape(n, flen).mean(axis=1)
    if fr.max() <= 0:
        return 0.0
    active = fr >= fr.max() * 1e-4  # within 40 dB of the loudest frame
    return float(fr[active].mean())


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float, sr: int,
               weighting: str = "whole") -> np.ndarray:
    """``wave + g * noise`` with g such that the SNR is ``snr_db``. Both [N]; returns float32 [N]."""
    ps = speech_power(wave, sr, weighting)
    pn = power(noise)
    if pn <= 0:
        raise ValueError("noise segment is silent; cannot set an SNR")
    if ps <= 0:  # the SNR is undefined; silence passed off as the noisy version would be trained and scored
        raise ValueError("the speech is silent: no SNR can be set (check the input audio)")
    gain = math.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return as_wave(wave.astype(np.float64) + gain * noise.astype(np.float64))


# ---------------------------------------------------------------- procedural noises


def split_seed(rng: np.random.Generator, split: str) -> int:
    """Seed for a procedural noise: ``2 k`` for train, ``2 k + 1`` for test (disjoint seed spaces)."""
    k = int(rng.integers(0, 2 ** 62))
    return 2 * k + (0 if check_split(split) == "train" else 1)


def _fast_len(n: int) -> int:
    """Smallest m >= n whose only prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _coloured(n: int, sr: int, rng: np.random.Generator, exponent: float, f_min: float = 20.0) -> np.ndarray:
    """Gaussian noise [n] with power spectrum ~ 1/f**exponent above ``f_min`` Hz, unit RMS.

    Shaped in the frequency domain over a fast FFT length >= n, then cut to n."""
    if exponent == 0:
        x = rng.standard_normal(n)
    else:
        m = _fast_len(n)
        spec = np.fft.rfft(rng.standard_normal(m))
        f = np.fft.rfftfreq(m, 1.0 / sr)
        gain = np.zeros_like(f)
        keep = f >= f_min
        gain[keep] = f[keep] ** (-exponent / 2.0)
        x = np.fft.irfft(spec * gain, n=m)[:n]
    rms = math.sqrt(power(x))
    return x / rms if rms > 0 else x


def white_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise, float64 [n], unit RMS."""
    return _coloured(n, sr, rng, 0.0)


def pink_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise above 20 Hz, float64 [n], unit RMS."""
    return _coloured(n, sr, rng, 1.0)


def brown_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Brown (1/f^2 power) noise above 20 Hz, float64 [n], unit RMS."""
    return _coloured(n, sr, rng, 2.0)


def hum_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and harmonics up to 2 kHz with ~1/k amplitudes, random phases,
    slow 0.1-1 Hz amplitude wobble and a -40 dB white floor. float64 [n], unit RMS."""
    f0 = float(rng.choice([50.0, 60.0])) * rng.uniform(0.998, 1.002)
    t = np.arange(n) / sr
    x = np.zeros(n)
    k_max = int(min(2000.0, 0.45 * sr) // f0)
    slope = rng.uniform(0.5, 1.5)
    base = np.exp(2j * np.pi * f0 * t)  # harmonic k is base**k, built by repeated products
    zk = np.ones(n, dtype=np.complex128)
    for k in range(1, k_max + 1):
        zk *= base
        amp = k ** (-slope) * rng.uniform(0.5, 1.0)
        if k % 2 == 1:  # odd harmonics dominate in transformer hum
            amp *= 2.0
        x += amp * (zk * np.exp(1j * rng.uniform(0, 2 * np.pi))).imag
    wobble = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t + rng.uniform(0, 2 * np.pi))
    x *= wobble
    x /= math.sqrt(power(x))
    x += 0.01 * rng.standard_normal(n)
    return x / math.sqrt(power(x))


def burst_noise(n: int, sr: int, rng: np.random.Generator, rate_hz: float = 1.5) -> np.ndarray:
    """Non-stationary noise: Poisson-timed bursts (30-400 ms, raised-cosine 5 ms edges, random
    white/pink/brown colour, levels spread over 20 dB) on a -30 dB pink floor. float64 [n], unit RMS."""
    x = 0.0316 * pink_noise(n, sr, rng)
    n_bursts = max(1, int(rng.poisson(rate_hz * n / sr)))
    for _ in range(n_bursts):
        length = min(n, int(rng.uniform(0.03, 0.4) * sr))
        start = int(rng.integers(0, max(1, n - length + 1)))
        colour = rng.choice([0.0, 1.0, 2.0])
        seg = _coloured(length, sr, rng, float(colour))
        ramp = min(int(0.005 * sr), length // 2)
        env = np.ones(length)
        if ramp > 0:
            r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
            env[:ramp] = r
            env[length - ramp:] = r[::-1]
        x[start:start + length] += 10.0 ** (rng.uniform(-20.0, 0.0) / 20.0) * seg * env
    return x / math.sqrt(power(x))


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, sr: int, utt: str) -> np.ndarray:
    wave, _ = load_audio(path, target_sr=sr, utt=utt)
    wave.setflags(write=False)
    return wave


def _looped(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n] samples of ``x`` [M] from a random offset, wrapping around when M < n or at the end."""
    m = len(x)
    if m >= n:
        start = int(rng.integers(0, m - n + 1))
        return np.asarray(x[start:start + n], dtype=np.float64)
    start = int(rng.integers(0, m))
    idx = (start + np.arange(n)) % m
    return np.asarray(x[idx], dtype=np.float64)


def babble_noise(n: int, sr: int, rng: np.random.Generator, pool: Sequence[tuple[str, str]],
                 utt_id: str | None, talkers: int = 5) -> np.ndarray:
    """Sum of ``talkers`` other utterances from ``pool`` [(utt_id, wav_path)], each looped from a
    random offset to [n] and scaled to unit RMS. float64 [n], unit RMS."""
    cands = [(u, p) for u, p in pool if u != utt_id]
    if not cands:
        raise ValueError("babble needs other utterances in the data dir (pool is empty)")
    k = min(int(talkers), len(cands))
    if k < talkers:
        log.warning("babble: only %d other utterances available, using %d talkers instead of %d",
                    len(cands), k, talkers)
    pick = rng.choice(len(cands), size=k, replace=False)
    x = np.zeros(n)
    for i in sorted(int(j) for j in pick):
        u, p = cands[i]
        seg = _looped(_load_cached(p, sr, u), n, rng)
        p_seg = power(seg)
        if p_seg > 0:
            x += seg / math.sqrt(p_seg)
    if power(x) <= 0:
        raise ValueError("babble: the chosen utterances are silent")
    return x / math.sqrt(power(x))


# ---------------------------------------------------------------- noise files


def _split_of(rel: str, test_fraction: float) -> str:
    return "test" if (stable_seed("noise-split", rel) % 100000) < test_fraction * 100000 else "train"


@functools.lru_cache(maxsize=16)
def noise_files(noise_dir: str, split: str, glob: str = "**/*", split_unit: str = "file",
                test_fraction: float = 0.2) -> tuple[str, ...]:
    """Sorted audio files under ``noise_dir`` that belong to ``split`` (see module docstring)."""
    check_split(split)
    root = Path(noise_dir)
    if not root.is_dir():
        raise ValueError(f"noise_dir not found: {root}")
    if root.name in MSSNSD_DIRS.values():
        raise ValueError(f"noise_dir {root} is one MS-SNSD split; give its parent folder so that "
                         "train and test noise stay disjoint")
    if split_unit not in ("file", "dir", "all"):
        raise ValueError(f"split_unit must be 'file' or 'dir', got {split_unit!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")

    def scan(base: Path) -> list[Path]:
        return sorted(p for p in base.glob(glob) if p.suffix.lower() in AUDIO_EXTS and p.is_file())

    if split_unit == "all":  # a folder that is one split (noise_dir: {train: DIR, test: DIR})
        files = scan(root)
    elif all((root / d).is_dir() for d in MSSNSD_DIRS.values()):  # MS-SNSD: its own split
        files = scan(root / MSSNSD_DIRS[split])
    else:
        files = []
        for p in scan(root):
            rel = p.relative_to(root)
            unit = rel.parent.as_posix() if split_unit == "dir" else rel.as_posix()
            if _split_of(unit, test_fraction) == split:
                files.append(p)
    if not files:
        raise ValueError(f"no {split} noise files under {root} (glob {glob!r}, extensions {AUDIO_EXTS})")
    log.info("noise: %d %s files under %s", len(files), split, root)
    return tuple(str(f) for f in files)


def file_noise_segment(path: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """[n] samples at ``sr`` from a random place of the noise file (looped if short), float64 [n]."""
    try:
        info = sf.info(path)
    except Exception as e:
        raise AudioError(f"cannot read noise file {path}: {e}") from None
    fsr = int(info.samplerate)
    need = int(math.ceil(n * fsr / sr)) + (16 if fsr != sr else 0)
    if info.frames <= 0:
        raise AudioError(f"empty noise file {path}")
    try:
        if info.frames >= need:
            start = int(rng.integers(0, info.frames - need + 1))
            x, _ = sf.read(path, start=start, frames=need, dtype="float32", always_2d=True)
            x = x.mean(axis=1)
        else:
            x, _ = sf.read(path, dtype="float32", always_2d=True)
            x = _looped(x.mean(axis=1), need, rng).astype(np.float32)
    except Exception as e:
        raise AudioError(f"cannot read noise file {path}: {e}") from None
    if not np.all(np.isfinite(x)):
        raise AudioError(f"noise file contains NaN or inf samples: {path}")
    if fsr != sr:
        x = resample(x, fsr, sr)
    x = np.asarray(x[:n], dtype=np.float64)
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    return x


# ---------------------------------------------------------------- the degradation


def make_noise(source: str, n: int, sr: int, rng: np.random.Generator, *, split: str = "test",
               pool: Sequence[tuple[str, str]] = (), utt_id: str | None = None, talkers: int = 5,
               noise_dir: str | None = None, glob: str = "**/*", split_unit: str = "file",
               test_fraction: float = 0.2) -> np.ndarray:
    """A float64 [n] noise signal of type ``source`` drawn from the ``split`` noise space."""
    check_split(split)
    if source == "files":
        if not noise_dir:
            raise ValueError("source 'files' needs noise_dir")
        if isinstance(noise_dir, Mapping):  # one folder per split: all of its files
            if split not in noise_dir:
                raise ValueError(f"noise_dir has no {split!r} folder (keys: {sorted(noise_dir)})")
            noise_dir, split_unit = os.fspath(noise_dir[split]), "all"
        files = noise_files(str(noise_dir), split, glob, split_unit, float(test_fraction))
        for _ in range(5):  # avoid a digitally silent stretch of a noise file
            path = files[int(rng.integers(len(files)))]
            x = file_noise_segment(path, n, sr, rng)
            if power(x) > 1e-12:
                return x
        raise ValueError(f"noise segments from {noise_dir} are silent (last tried: {path})")
    r = np.random.default_rng(split_seed(rng, split))
    if source == "white":
        return white_noise(n, sr, r)
    if source == "pink":
        return pink_noise(n, sr, r)
    if source == "brown":
        return brown_noise(n, sr, r)
    if source == "hum":
        return hum_noise(n, sr, r)
    if source == "bursts":
        return burst_noise(n, sr, r)
    if source == "babble":
        return babble_noise(n, sr, r, pool, utt_id, talkers)
    raise ValueError(f"unknown noise source {source!r}; known: {', '.join(SOURCES)}")


@register("noise")
def add_noise(wave: np.ndarray, sr: int, rng: np.random.Generator, *,
              source: str | Sequence[str] = "white", snr: float | Sequence[float] | None = None,
              snr_range: Sequence[float] | None = None, weighting: str = "whole", talkers: int = 5,
              noise_dir: str | Mapping[str, str] | None = None, glob: str = "**/*", split_unit: str = "file",
              test_fraction: float = 0.2, split: str = "test",
              pool: Sequence[tuple[str, str]] = (), utt_id: str | None = None) -> np.ndarray:
    """Add noise at an SNR in dB drawn from ``snr`` (list) or ``snr_range`` ([lo, hi]).

    wave: float32 [N] at ``sr`` Hz -> float32 [N]. See the module docstring for sources, the SNR
    definition and the train/test split.
    """
    check_wave(wave, sr)
    snr_db = draw_value(rng, "snr", snr, snr_range)
    sources = [source] if isinstance(source, str) else list(source)
    for s in sources:
        if s not in SOURCES:
            raise ValueError(f"unknown noise source {s!r}; known: {', '.join(SOURCES)}")
    src = sources[int(rng.integers(len(sources)))] if len(sources) > 1 else sources[0]
    noise = make_noise(src, len(wave), sr, rng, split=split, pool=pool, utt_id=utt_id, talkers=talkers,
                       noise_dir=(noise_dir if isinstance(noise_dir, Mapping) else os.fspath(noise_dir))
                       if noise_dir else None, glob=glob,
                       split_unit=split_unit, test_fraction=test_fraction)
    return mix_at_snr(wave, noise, snr_db, sr, weighting)
