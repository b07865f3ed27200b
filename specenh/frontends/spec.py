"""What a front-end name means in a recipe, answered in one place (no torch: the shell driver asks).

A recipe's front-ends are names; ``conf/frontend/<name>.yaml`` (when it exists) says what each is:

- a **training config** (stage 4 trains it into ``exp/frontend_<name>/model.pt``); a *variant*
  ``<base>_<what>.yaml`` is trained by ``<base>``'s trainer (or the trainer its ``frontend:`` key names);
- an **inference variant**: ``checkpoint:`` (a trained model) + ``inference:`` options; nothing to train;
- an **auto** front-end: ``members:``, chosen per utterance by the frozen ASR in stage 5; nothing to train,
  but with a ``tune:`` block stage 4 chooses its selection margin on the validation subset and writes
  ``exp/frontend_<name>/<name>.yaml``, which stage 5 decodes with;
- no YAML: a registered untrained front-end (identity, oracle, specsub, ...).

Named sets (``all``, ``ablations``, ...) live in the recipe's ``conf/frontend/sets.yaml``, so each recipe
defines its own. Command line for the driver::

    python -m specenh.frontends.spec expand  --conf-dir conf/frontend all stylegan     # names, one line
    python -m specenh.frontends.spec kind    --conf-dir conf/frontend NAME             # train|inference|auto|builtin
    python -m specenh.frontends.spec decode-spec --conf-dir conf/frontend --exp-dir exp NAME   # stage 5/7 --frontend
    python -m specenh.frontends.spec tuned-path --conf-dir conf/frontend --exp-dir exp NAME    # stage 4: auto to tune
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

SETS_FILE = "sets.yaml"
#: the unprocessed baseline every front-end is compared with, and the reference systems that are not
#: candidates for "best front-end" (the upper bound uses the clean features)
BASELINE = "identity"
REFERENCES = ("identity", "oracle")


def _yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return data


def named_sets(conf_dir: str | Path) -> dict[str, list[str]]:
    """The recipe's named front-end sets (``conf/frontend/sets.yaml``; none when absent)."""
    p = Path(conf_dir) / SETS_FILE
    if not p.is_file():
        return {}
    sets = _yaml(p)
    for k, v in sets.items():
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"{p}: set {k!r} must be a list of front-end names")
    return {k: list(v) for k, v in sets.items()}


def expand(names: list[str], conf_dir: str | Path) -> list[str]:
    """Names with named sets replaced by their members (recursively), duplicates dropped, order kept."""
    sets = named_sets(conf_dir)
    out: list[str] = []

    def add(n: str, seen: tuple[str, ...]) -> None:
        if n in sets:
            if n in seen:
                raise ValueError(f"front-end set {n!r} includes itself ({' -> '.join(seen + (n,))})")
            for m in sets[n]:
                add(m, seen + (n,))
        elif n not in out:
            out.append(n)

    for n in names:
        for w in n.split():
            add(w, ())
    return out


def kind(name: str, conf_dir: str | Path) -> str:
    """``train`` | ``inference`` | ``auto`` | ``builtin`` (see the module docstring)."""
    p = Path(conf_dir) / f"{name}.yaml"
    if not p.is_file():
        return "builtin"
    cfg = _yaml(p)
    if "members" in cfg:
        return "auto"
    if "checkpoint" in cfg:
        return "inference"
    return "train"


def trainer_of(name: str, cfg: dict | None = None, known: set[str] | None = None) -> str:
    """The trainer of a training config: its ``frontend:`` key, the name itself when it is a trainer,
    else the part before the first ``_`` (a variant such as ``stylegan_nocx``)."""
    if cfg and cfg.get("frontend"):
        return str(cfg["frontend"])
    if known is not None and name in known:
        return name
    return name.split("_")[0]


def member_label(spec: str) -> str:
    """A short name for a front-end spec: ``exp/frontend_bwe/model.pt`` -> ``bwe``; a YAML -> its stem."""
    p = Path(str(spec))
    if p.name == "model.pt" and p.parent.name.startswith("frontend_"):
        return p.parent.name[len("frontend_"):]
    if p.suffix in (".yaml", ".yml", ".pt", ".ckpt", ".pth"):
        return p.stem
    return str(spec)


def tuned_path(name: str, conf_dir: str | Path, exp_dir: str | Path) -> str | None:
    """For an auto config with a ``tune:`` block, the tuned YAML stage 4 writes (else None)."""
    if kind(name, conf_dir) != "auto" or "tune" not in _yaml(Path(conf_dir) / f"{name}.yaml"):
        return None
    return str(Path(exp_dir) / f"frontend_{name}" / f"{name}.yaml")


def decode_spec(name: str, conf_dir: str | Path, exp_dir: str | Path) -> str:
    """What stage 5/7 pass as ``--frontend``: the trained model, the variant/auto YAML (a tuned auto: the
    copy stage 4 wrote), or the name."""
    k = kind(name, conf_dir)
    if k == "train":
        return str(Path(exp_dir) / f"frontend_{name}" / "model.pt")
    tuned = tuned_path(name, conf_dir, exp_dir)
    if tuned is not None:
        return tuned
    if k in ("inference", "auto"):
        return str(Path(conf_dir) / f"{name}.yaml")
    return name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specenh.frontends.spec", description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["expand", "kind", "decode-spec", "tuned-path"])
    ap.add_argument("--conf-dir", required=True)
    ap.add_argument("--exp-dir", default="exp")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.what == "expand":
            print(" ".join(expand(a.names, a.conf_dir)))
        elif a.what == "kind":
            print("\n".join(kind(n, a.conf_dir) for n in a.names))
        elif a.what == "tuned-path":
            print("\n".join(tuned_path(n, a.conf_dir, a.exp_dir) or "" for n in a.names))
        else:
            print("\n".join(decode_spec(n, a.conf_dir, a.exp_dir) for n in a.names))
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"specenh.frontends.spec: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
