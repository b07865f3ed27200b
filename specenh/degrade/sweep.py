"""Severity sweeps: one condition YAML that declares a grid and expands into one condition per value.

A sweep file (``conf/degrade/<sweep>.yaml``) is a condition with a ``sweep:`` section::

    name: snr_sweep
    sweep:
      param: steps.0.snr        # the dotted key (list indices allowed) that takes each value
      values: [-5, 0, 5, 10, 20]
      unit: dB                  # for plot axes (optional)
      wrap: true                # put each value in a one-element list (for list-valued parameters such as snr)
    steps:
      - type: noise
        source: [pink, babble, bursts, hum]
        snr: [5]                # replaced by each value

It expands into conditions named ``<name>_<value>`` (``-5`` -> ``m5``, ``0.1`` -> ``0p1``): ``snr_sweep_m5``,
``snr_sweep_0``, ... Each expanded condition keeps ``sweep: {name, param, value, unit}``, which stage 2 writes
into ``condition.yaml``, so the report can draw WER against the value. Recipes name the sweep file in their
condition lists (or with ``--sweeps``); the driver expands it (``python -m specenh.degrade.sweep expand``).
Light: no numpy, no torch.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml


def value_tag(v: Any) -> str:
    """A value as it appears in a condition name: ``-5`` -> ``m5``, ``0.25`` -> ``0p25``, ``1000`` -> ``1000``."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).replace("-", "m").replace(".", "p")


def _set(cfg: dict, key: str, value: Any, origin: str) -> None:
    parts = key.split(".")
    node: Any = cfg
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise ValueError(f"{origin}: sweep.param {key!r}: {'.'.join(parts[:i + 1])} is not a list index")
            if last:
                node[int(p)] = value
            else:
                node = node[int(p)]
        elif isinstance(node, dict):
            if p not in node:
                raise ValueError(f"{origin}: sweep.param {key!r}: no key {'.'.join(parts[:i + 1])}")
            if last:
                node[p] = value
            else:
                node = node[p]
        else:
            raise ValueError(f"{origin}: sweep.param {key!r}: {'.'.join(parts[:i])} is not a mapping or list")


def expand_sweep(cfg: dict, origin: str = "<sweep>") -> list[dict]:
    """The conditions (mappings) a sweep mapping declares, one per value, in the given order."""
    sw = cfg.get("sweep")
    if not isinstance(sw, dict) or "param" not in sw or not isinstance(sw.get("values"), list) or not sw["values"]:
        raise ValueError(f"{origin}: 'sweep' needs 'param' (a dotted key) and a non-empty list 'values'")
    out = []
    for v in sw["values"]:
        c = copy.deepcopy({k: x for k, x in cfg.items() if k != "sweep"})
        _set(c, str(sw["param"]), [v] if sw.get("wrap") else v, origin)
        c["name"] = f"{cfg['name']}_{value_tag(v)}"
        c["sweep"] = {"name": cfg["name"], "param": str(sw["param"]), "value": v, "unit": str(sw.get("unit", ""))}
        out.append(c)
    names = [c["name"] for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{origin}: sweep values give the same condition name twice: {names}")
    return out


def _read(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return data


def sweeps_in(conf_dir: str | Path) -> dict[str, list[dict]]:
    """Every sweep file of a condition dir: file stem -> its expanded conditions."""
    out = {}
    for p in sorted(Path(conf_dir).glob("*.yaml")):
        try:
            data = _read(p)
        except (ValueError, yaml.YAMLError):
            continue
        if "sweep" in data:
            out[p.stem] = expand_sweep(data, str(p))
    return out


def find_condition(path: str | Path) -> dict | None:
    """The mapping of ``conf_dir/<name>.yaml``: the file itself, or the expanded sweep condition of that name
    (None when neither exists)."""
    path = Path(path)
    if path.is_file():
        return None  # a plain file: read it as it is
    for conds in sweeps_in(path.parent).values():
        for c in conds:
            if c["name"] == path.stem:
                return c
    return None


def expand_names(tokens: list[str], conf_dir: str | Path) -> list[str]:
    """Condition names with sweep files replaced by their expanded names (order kept, no duplicates)."""
    sweeps = sweeps_in(conf_dir)
    out: list[str] = []
    for t in tokens:
        for w in t.split():
            for n in ([c["name"] for c in sweeps[w]] if w in sweeps else [w]):
                if n not in out:
                    out.append(n)
    return out


def exists(name: str, conf_dir: str | Path) -> bool:
    return (Path(conf_dir) / f"{name}.yaml").is_file() or find_condition(Path(conf_dir) / f"{name}.yaml") is not None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specenh.degrade.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["expand"])
    ap.add_argument("--conf-dir", required=True)
    ap.add_argument("names", nargs="*")
    a = ap.parse_intermixed_args(argv)
    try:
        print(" ".join(expand_names(a.names, a.conf_dir)))
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"specenh.degrade.sweep: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
