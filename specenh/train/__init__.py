"""Front-end training (stage 4): shared data, a trainer registry, one entry point.

A trainable front-end (``trainable = True``) is trained by the supervised trainer
(:mod:`specenh.train.supervised`: its loss and augmentation are the front-end's own hooks) unless it
registers a training function of its own with :func:`register_trainer`, as the GAN does::

    @register_trainer("stylegan")
    def train_stylegan(cfg: dict, data: FrontendData, exp_dir: Path) -> Path: ...  # returns exp_dir/model.pt

``train_frontend`` resolves the data, saves the resolved config into the experiment dir, and
calls the trainer. ``model.pt`` must be loadable with :func:`specenh.frontends.load`.
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from specenh.utils.config import save_config

log = logging.getLogger(__name__)

TRAINERS: dict[str, Callable[..., Path]] = {}
#: per trainer, the function that fills its config's defaults and rejects unknown keys (for preflight checks)
RESOLVERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
# modules whose import registers trainers (missing ones are skipped)
_TRAINER_MODULES = ["specenh.train.gan", "specenh.train.supervised"]


def register_trainer(name: str, resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
    """Register ``fn(cfg, data, exp_dir) -> model.pt`` for front-end ``name``; ``resolve(cfg)`` (optional) returns
    the config with its defaults, raising ValueError on unknown keys, without training (:func:`check_config`)."""
    def deco(fn: Callable[..., Path]) -> Callable[..., Path]:
        TRAINERS[name] = fn
        if resolve is not None:
            RESOLVERS[name] = resolve
        return fn

    return deco


def check_config(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Raise ValueError if front-end ``name``'s training config (overrides applied) has unknown keys or bad values:
    what stage 4 would find, found before any work (the driver's preflight)."""
    cfg = dict(cfg)
    kind = _kind(name, cfg)
    cfg.pop("frontend", None)
    found = trainer_for(kind)
    return found[1](cfg) if found is not None else cfg


def _kind(name: str, cfg: dict[str, Any]) -> str:
    from specenh.frontends.base import trainable_names
    from specenh.frontends.spec import trainer_of

    _import_trainers()
    return trainer_of(name, cfg, set(TRAINERS) | set(trainable_names()))


def trainer_for(kind: str) -> tuple[Callable[..., Path], Callable[[dict[str, Any]], dict[str, Any]]] | None:
    """``(train(cfg, data, exp_dir), resolve(cfg))`` for front-end ``kind``: its own registered trainer, else
    the supervised trainer bound to it when it is a registered trainable front-end; None otherwise."""
    import copy

    _import_trainers()
    if kind in TRAINERS:
        return TRAINERS[kind], RESOLVERS.get(kind, lambda c: c)
    from specenh.frontends.base import trainable_names

    if kind not in trainable_names():
        return None
    from specenh.train.supervised import resolve_config, train_supervised

    return ((lambda cfg, data, exp_dir: train_supervised(kind, cfg, data, exp_dir)),
            (lambda cfg: resolve_config(kind, copy.deepcopy(dict(cfg)))))


@dataclass
class FrontendData:
    """Where a front-end's training data lives (all stage-2/3 outputs).

    train_pairs / valid_pairs: (degraded dir suffix, clean dir) pairs as
    ``(dump/feats/<set>_<cond>, dump/feats/<set>)``; the data dirs with wavs are ``data/<set>_<cond>``.
    asr_model: the frozen ASR (``.nemo`` path or pretrained name) for losses that use it.
    online: with ``--train-data online``, how to make the training pairs on the fly
    (:class:`specenh.train.online.OnlineSpec`); the training dirs above are then names only (no
    stage-2/3 outputs exist for them) and the validation dirs are precomputed as before.
    """

    train_feats: list[Path]
    train_clean_feats: list[Path]
    valid_feats: list[Path]
    valid_clean_feats: list[Path]
    train_data_dirs: list[Path] = field(default_factory=list)
    valid_data_dirs: list[Path] = field(default_factory=list)
    asr_model: str | None = None
    online: Any = None  # OnlineSpec | None (not imported here: this module stays light)


def select_conditions(dirs: Sequence[Path], patterns: Sequence[str]) -> list[int]:
    """Indices of ``dirs`` whose name (``<set>_<cond>``) matches one of ``patterns`` (fnmatch, on the
    whole name or on its condition suffix)."""
    keep = []
    for i, d in enumerate(dirs):
        n = Path(d).name
        if any(fnmatch.fnmatchcase(n, p) or fnmatch.fnmatchcase(n, "*_" + p) for p in patterns):
            keep.append(i)
    return keep


def _import_trainers() -> None:
    from specenh.utils.imports import import_optional

    import_optional(_TRAINER_MODULES)


def train_frontend(name: str, cfg: dict[str, Any], data: FrontendData, exp_dir: str | Path) -> Path:
    """Train front-end ``name``; returns the checkpoint path (``exp_dir/model.pt``).

    A variant (e.g. an ablation ``stylegan_nocx``) names its trainer with a ``frontend:`` key in its
    config, or is found by the part of its name before the first ``_``.
    """
    cfg = dict(cfg)
    kind = _kind(name, cfg)
    cfg.pop("frontend", None)
    if kind != name:
        log.info("front-end %r is a variant of %r", name, kind)
    name = kind
    found = trainer_for(name)
    if found is None:
        from specenh.frontends.base import trainable_names

        raise ValueError(f"front-end {name!r} is not trainable; trainable: {sorted(set(TRAINERS) | set(trainable_names()))}")
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    check_data_mode(exp_dir, data)
    save_config(cfg, exp_dir / "config.yaml")
    return found[0](cfg, data, exp_dir)


def data_mode(data: FrontendData) -> dict[str, Any]:
    """Where the training pairs come from (``exp_dir/train_data.json``)."""
    if data.online is None:
        return {"train_data": "precomputed"}
    return {"train_data": "online", "mix": bool(data.online.mix), "degrade_seed": int(data.online.seed)}


def check_data_mode(exp_dir: Path, data: FrontendData) -> None:
    """Refuse to resume a checkpoint trained on other data (precomputed vs online): a mixed model. An
    experiment dir from before this file existed counts as precomputed."""
    import json

    mode, f = data_mode(data), exp_dir / "train_data.json"
    if (exp_dir / "checkpoints" / "last.ckpt").is_file():
        before = json.loads(f.read_text()) if f.is_file() else {"train_data": "precomputed"}
        if before != mode:
            raise ValueError(f"{exp_dir}: its checkpoint was trained with {before}, this run asks for {mode}; "
                             f"train from scratch with --overwrite (stage 4: --overwrite true) or use another exp dir")
    f.write_text(json.dumps(mode) + "\n")
