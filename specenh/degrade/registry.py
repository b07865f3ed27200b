"""Registry of degradations by name, the result type, and helpers shared by the degradations.

A degradation is a function ``fn(wave, sr, rng, **params)`` with

* ``wave``: float32 [N] waveform in [-1, 1] (values outside are allowed between steps),
* ``sr``: sample rate in Hz,
* ``rng``: a ``numpy.random.Generator``, the only source of randomness,

returning either a float32 [N] array of the same length, or a :class:`DegradeResult` when the
degradation has side outputs (``holes`` returns its time-frequency mask that way).

Three keyword names are reserved and filled in by the condition layer when the function declares
them (they cannot be set from YAML): ``split`` ("train" or "test": which noise pool to draw from),
``utt_id`` (the utterance being degraded) and ``pool`` (``[(utt_id, wav_path), ...]`` of the whole
data dir, e.g. for babble).
"""
from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

DegradeFn = Callable[..., "np.ndarray | DegradeResult"]

RESERVED_PARAMS = ("split", "utt_id", "pool")
SPLITS = ("train", "test")

# modules whose import registers the built-in degradations (imported on first lookup)
_BUILTIN_MODULES = (
    "specenh.degrade.noise",
    "specenh.degrade.bandlimit",
    "specenh.degrade.holes",
    "specenh.degrade.codec",
    "specenh.degrade.reverb",
    "specenh.degrade.griffinlim",
)

_REGISTRY: dict[str, DegradeFn] = {}
_loaded = False


@dataclass
class DegradeResult:
    """A degraded waveform and its side outputs.

    ``wave``: float32 [N]. ``aux``: name -> array saved per utterance by stage 2 as
    ``<wav_dir>/<utt>.<name>.npy`` and listed in ``<out_dir>/<name>.scp`` (e.g. ``holes_mask``:
    bool [F, T], True where the STFT was zeroed).
    """

    wave: np.ndarray
    aux: dict[str, np.ndarray] = field(default_factory=dict)


def register(name: str) -> Callable[[DegradeFn], DegradeFn]:
    """Decorator adding ``fn`` to the registry under ``name`` (a name can be registered once)."""

    def deco(fn: DegradeFn) -> DegradeFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"degradation {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True


def get_degradation(name: str) -> DegradeFn:
    """The degradation registered as ``name``; KeyError listing the known names otherwise."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def available_degradations() -> list[str]:
    """Sorted names of every registered degradation."""
    _load_builtins()
    return sorted(_REGISTRY)


def accepted_params(fn: DegradeFn) -> tuple[set[str], bool]:
    """(keyword parameter names after ``wave, sr, rng``, whether ``**kwargs`` is accepted)."""
    sig = inspect.signature(fn)
    names = list(sig.parameters)[3:]
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return {n for n in names if sig.parameters[n].kind is not inspect.Parameter.VAR_KEYWORD}, var_kw


# ---------------------------------------------------------------- helpers for degradations


def draw_value(rng: np.random.Generator, what: str, values: float | Sequence[float] | None = None,
               value_range: Sequence[float] | None = None, default: float | None = None) -> float:
    """One value for a parameter given as a list (uniform choice) or a ``[lo, hi]`` range (uniform).

    Exactly one of ``values`` / ``value_range`` may be set; with neither, ``default`` is used
    (ValueError when there is no default either).
    """
    if values is not None and value_range is not None:
        raise ValueError(f"give either {what} or {what}_range, not both")
    if values is not None:
        vals = [values] if isinstance(values, (int, float)) else list(values)
        if not vals:
            raise ValueError(f"{what}: empty list")
        return float(vals[int(rng.integers(len(vals)))]) if len(vals) > 1 else float(vals[0])
    if value_range is not None:
        if len(value_range) != 2 or not value_range[0] <= value_range[1]:
            raise ValueError(f"{what}_range must be [lo, hi] with lo <= hi, got {value_range!r}")
        lo, hi = float(value_range[0]), float(value_range[1])
        return float(rng.uniform(lo, hi)) if hi > lo else lo
    if default is None:
        raise ValueError(f"{what} (a list) or {what}_range ([lo, hi]) is required")
    return float(default)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad a [M] array to [n]."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])


def as_wave(x: np.ndarray) -> np.ndarray:
    """Contiguous float32 [N] copy-if-needed."""
    return np.ascontiguousarray(x, dtype=np.float32)


def db_to_amp(db: float) -> float:
    return 10.0 ** (db / 20.0)


def power(x: np.ndarray) -> float:
    """Mean square of [N] samples (float64 accumulation)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0


def power_db(x: np.ndarray) -> float:
    p = power(x)
    return 10.0 * math.log10(p) if p > 0 else -math.inf


def check_wave(wave: np.ndarray, sr: int) -> None:
    """Raise ValueError unless ``wave`` is 1-D and ``sr`` a positive rate."""
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform [N], got shape {wave.shape}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
