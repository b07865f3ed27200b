"""Degradation conditions: a named list of steps read from YAML, applied in order.

A condition file (``conf/degrade/<name>.yaml``)::

    name: noise_5db          # used in seeds and data dir names: letters, digits, _ . + -
    sample_rate: 16000       # optional; audio is read (and resampled if needed) at this rate
    description: free text   # optional
    steps:                   # [] = identity (the clean condition)
      - type: noise          # a registered degradation
        source: [pink, babble]
        snr: [5]

Each step's keys other than ``type`` are the degradation's keyword parameters; unknown keys are an
error at load time. Overrides use dotted keys with list indices: ``steps.0.snr=[0]``, ``name=x``.

Randomness: stage 2 passes ``rng_for(seed, condition.name, utt_id)``; step ``i`` uses the i-th child
of ``rng.spawn(len(steps))``, so adding a step at the end leaves earlier steps' draws unchanged.
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from specenh.degrade.registry import (
    RESERVED_PARAMS,
    DegradeResult,
    accepted_params,
    check_split,
    get_degradation,
)
from specenh.utils.config import ConfigError, load_yaml, parse_override

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_TOP_KEYS = {"name", "sample_rate", "description", "steps", "provenance", "sweep"}


class DegradeError(RuntimeError):
    """A step failed on an utterance; the message names the condition, step and utterance."""


@dataclass(frozen=True)
class Step:
    """One degradation: its registry name and keyword parameters."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **copy.deepcopy(self.params)}


@dataclass(frozen=True)
class Condition:
    """A named, ordered composition of degradation steps."""

    name: str
    steps: tuple[Step, ...] = ()
    sample_rate: int = 16000
    description: str = ""
    sweep: dict[str, Any] | None = None  # {name, param, value, unit} for a condition expanded from a sweep

    def to_dict(self) -> dict[str, Any]:
        """The resolved condition as a YAML-ready mapping (what ``condition.yaml`` holds)."""
        d: dict[str, Any] = {"name": self.name, "sample_rate": self.sample_rate}
        if self.description:
            d["description"] = self.description
        d["steps"] = [s.to_dict() for s in self.steps]
        if self.sweep:
            d["sweep"] = dict(self.sweep)
        return d

    def apply(self, wave: np.ndarray, sr: int, rng: np.random.Generator, *, split: str = "test",
              utt_id: str | None = None, pool: Sequence[tuple[str, str]] = ()) -> DegradeResult:
        """Run every step in order. wave: float32 [N] at ``sr`` Hz -> DegradeResult (wave [N], aux).

        ``split`` / ``utt_id`` / ``pool`` are handed to the steps that declare them. Aux outputs of
        the same name from several steps are OR-ed (boolean masks) or the last one kept.
        """
        check_split(split)
        out = np.ascontiguousarray(wave, dtype=np.float32)
        n = len(out)
        aux: dict[str, np.ndarray] = {}
        rngs = rng.spawn(len(self.steps)) if self.steps else []
        for i, (step, r) in enumerate(zip(self.steps, rngs)):
            fn = get_degradation(step.type)
            names, _ = accepted_params(fn)
            kwargs = dict(step.params)
            ctx = {"split": split, "utt_id": utt_id, "pool": pool}
            kwargs.update({k: v for k, v in ctx.items() if k in names})
            where = f"condition {self.name!r} step {i} ({step.type})" + (f" on utterance {utt_id!r}" if utt_id else "")
            try:
                res = fn(out, sr, r, **kwargs)
            except (ValueError, KeyError, RuntimeError, OSError) as e:
                raise DegradeError(f"{where}: {e}") from e
            if isinstance(res, DegradeResult):
                new, step_aux = res.wave, res.aux
            else:
                new, step_aux = res, {}
            new = np.asarray(new)
            if new.shape != (n,):
                raise DegradeError(f"{where}: output shape {new.shape} != input shape {(n,)}")
            if not np.all(np.isfinite(new)):
                raise DegradeError(f"{where}: output contains NaN or inf")
            out = np.ascontiguousarray(new, dtype=np.float32)
            for k, v in step_aux.items():
                if k in aux and aux[k].dtype == bool and v.dtype == bool and aux[k].shape == v.shape:
                    aux[k] = aux[k] | v
                else:
                    aux[k] = v
        return DegradeResult(out, aux)


def condition_from_dict(cfg: Mapping[str, Any], origin: str = "<dict>") -> Condition:
    """Validate a condition mapping (see module docstring); ConfigError naming ``origin`` on error."""
    unknown = set(cfg) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level keys {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})")
    name = cfg.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{origin}: 'name' must be a non-empty string of letters, digits, _ . + -; got {name!r}")
    sr = cfg.get("sample_rate", 16000)
    if not isinstance(sr, int) or sr <= 0:
        raise ConfigError(f"{origin}: sample_rate must be a positive integer, got {sr!r}")
    raw_steps = cfg.get("steps") or []
    if not isinstance(raw_steps, list):
        raise ConfigError(f"{origin}: 'steps' must be a list")
    steps = []
    for i, st in enumerate(raw_steps):
        if not isinstance(st, Mapping) or "type" not in st:
            raise ConfigError(f"{origin}: step {i} must be a mapping with a 'type'")
        params = {k: copy.deepcopy(v) for k, v in st.items() if k != "type"}
        try:
            fn = get_degradation(str(st["type"]))
        except KeyError as e:
            raise ConfigError(f"{origin}: step {i}: {e.args[0]}") from None
        names, var_kw = accepted_params(fn)
        for k in params:
            if k in RESERVED_PARAMS:
                raise ConfigError(f"{origin}: step {i} ({st['type']}): {k!r} is set by stage 2, not in the condition")
            if k not in names and not var_kw:
                raise ConfigError(f"{origin}: step {i} ({st['type']}): unknown parameter {k!r}; "
                                  f"allowed: {sorted(names - set(RESERVED_PARAMS))}")
        steps.append(Step(str(st["type"]), params))
    sweep = cfg.get("sweep")
    if sweep is not None and not (isinstance(sweep, Mapping) and "value" in sweep and "name" in sweep):
        raise ConfigError(f"{origin}: a sweep file cannot be applied as it is; name one of its expanded conditions "
                          f"(specenh.degrade.sweep)")
    return Condition(name=name, steps=tuple(steps), sample_rate=sr, description=str(cfg.get("description", "")),
                     sweep=dict(sweep) if sweep else None)


def apply_condition_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Copy of ``cfg`` with ``key=value`` overrides; dotted keys may index lists (``steps.0.snr=[0]``).

    Values are parsed as YAML. A key of a step may be added (it is validated against the
    degradation's parameters afterwards); other missing keys are an error.
    """
    out = copy.deepcopy(dict(cfg))
    for ov in overrides:
        key, value = parse_override(ov)
        parts = key.split(".")
        node: Any = out
        for depth, p in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"override {ov!r}: {'.'.join(parts[:depth + 1])} is not a valid list index")
                if last:
                    node[int(p)] = value
                else:
                    node = node[int(p)]
            elif isinstance(node, dict):
                in_step = depth >= 2 and parts[0] == "steps"
                if p not in node and not (last and (in_step or depth == 0)):
                    raise ConfigError(f"override {ov!r}: unknown key {'.'.join(parts[:depth + 1])}")
                if last:
                    node[p] = value
                else:
                    node = node[p]
            else:
                raise ConfigError(f"override {ov!r}: {'.'.join(parts[:depth])} is not a mapping or list")
    return out


def load_condition(path: str | Path, overrides: Iterable[str] = ()) -> Condition:
    """Read, override and validate a condition YAML file, or a condition expanded from a sweep file of the
    same dir (``conf/degrade/snr_sweep_m5.yaml`` when ``snr_sweep.yaml`` declares that value)."""
    from specenh.degrade.sweep import find_condition

    path = Path(path)
    swept = find_condition(path)
    cfg = apply_condition_overrides(swept if swept is not None else load_yaml(path), overrides)
    cond = condition_from_dict(cfg, origin=str(path))
    if cond.name != path.stem and path.name != "condition.yaml" and not any(o.split("=", 1)[0].strip().lstrip("-") == "name" for o in overrides):
        log.warning("condition name %r differs from its file name %s", cond.name, path.name)
    return cond
