"""YAML configs whose every key can be overridden from the command line.

Overrides use dotted keys and YAML values: ``model.latent_dim=128``, ``degrade.snr=[0,5]``.
The resolved config is saved next to every experiment (:func:`save_config`).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A config file or an override is malformed."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file gives ``{}``."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def set_dotted(cfg: dict[str, Any], key: str, value: Any, *, strict: bool = False) -> None:
    """Set ``cfg['a']['b'] = value`` for ``key='a.b'``, creating mappings on the way.

    With ``strict=True`` the key must already exist (catches typos in overrides).
    """
    parts = key.split(".")
    node = cfg
    for i, p in enumerate(parts[:-1]):
        if p not in node:
            if strict:
                raise ConfigError(f"unknown config key: {'.'.join(parts[: i + 1])}")
            node[p] = {}
        if not isinstance(node[p], dict):
            raise ConfigError(f"cannot set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = node[p]
    if strict and parts[-1] not in node:
        raise ConfigError(f"unknown config key: {key}")
    node[parts[-1]] = value


def parse_override(ov: str) -> tuple[str, Any]:
    """``"a.b=value"`` -> ``("a.b", value)`` with the value parsed as YAML (``2e-3`` is a float)."""
    if "=" not in ov:
        raise ConfigError(f"override must look like key=value, got {ov!r}")
    key, raw = ov.split("=", 1)
    key = key.strip().lstrip("-")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {ov!r}: value is not valid YAML: {e}") from None
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads "2e-3" (no dot) as a string
    return key, value


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str], *, strict: bool = True) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``key=value`` overrides applied (values parsed as YAML)."""
    out = copy.deepcopy(dict(cfg))
    for ov in overrides:
        key, value = parse_override(ov)
        set_dotted(out, key, value, strict=strict)
    return out


def load_yaml_with_base(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML mapping that may name a ``base:`` file (relative to itself): the base is read first
    (recursively) and this file's keys are merged on top, so a variant config states only what differs.
    The ``base`` key itself is dropped from the result."""
    path = Path(path)
    key = path.resolve()
    if key in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, key))
        raise ConfigError(f"config base cycle: {chain}")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {type(base).__name__}")
    return merge(load_yaml_with_base(path.parent / base, (*_seen, key)), data)


def load_config(path: str | Path | None, overrides: Iterable[str] = (), *, defaults: Mapping[str, Any] | None = None,
                strict: bool = True) -> dict[str, Any]:
    """Defaults, then the YAML file (after its ``base:`` chain) on top, then command-line overrides on top."""
    cfg: dict[str, Any] = copy.deepcopy(dict(defaults or {}))
    if path is not None:
        cfg = merge(cfg, load_yaml_with_base(path))
    return apply_overrides(cfg, overrides, strict=strict)


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values in ``top`` win."""
    out = copy.deepcopy(dict(base))
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def save_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    """Write the resolved config as YAML (key order kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(dict(cfg), f, sort_keys=False, default_flow_style=None)
