"""``specenh train-frontend``: stage 4 for one front-end."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from specenh.frontends.base import REGISTRY, _import_all
    from specenh.train import FrontendData, train_frontend
    from specenh.utils.config import load_config

    from specenh.frontends.spec import trainer_of

    _import_all()
    cls = REGISTRY.get(args.name) or REGISTRY.get(trainer_of(args.name))
    if cls is not None and not cls.trainable:
        log.info("front-end %r has nothing to train", args.name)
        return 0
    cfg = load_config(args.config, args.overrides)
    # inference: (e.g. observation adding) is no training key: it travels in model.pt as the model's default
    inference = dict(cfg.pop("inference", None) or {})
    apply_run_options(cfg, args)
    if args.print_config:
        print(render_config(args.name, cfg, inference), end="")
        return 0
    missing = [o for o, v in (("--conditions", args.conditions), ("--exp-dir", args.exp_dir)) if not v]
    if missing:
        raise SystemExit(f"specenh train-frontend: {' and '.join(missing)} required (except with --print-config)")
    feats, data = Path(args.feats_root), Path(args.data_root)
    conds = args.conditions
    d = FrontendData(
        train_feats=[feats / f"{args.train_set}_{c}" for c in conds],
        train_clean_feats=[feats / args.train_set for _ in conds],
        valid_feats=[feats / f"{args.valid_set}_{c}" for c in conds],
        valid_clean_feats=[feats / args.valid_set for _ in conds],
        train_data_dirs=[data / f"{args.train_set}_{c}" for c in conds],
        valid_data_dirs=[data / f"{args.valid_set}_{c}" for c in conds],
        asr_model=args.asr_model,
        online=online_spec(args) if args.train_data == "online" else None,
    )
    if args.overwrite and (Path(args.exp_dir) / "checkpoints").is_dir():
        import shutil

        log.info("--overwrite: removing %s/checkpoints; training restarts", args.exp_dir)
        shutil.rmtree(Path(args.exp_dir) / "checkpoints")
    path = train_frontend(args.name, cfg, d, args.exp_dir)
    set_inference_defaults(path, inference)
    log.info("front-end %s: %s", args.name, path)
    return 0


def render_config(name: str, cfg: dict, inference: dict) -> str:
    """The config training would use (the trainer's defaults filled in, values checked), as YAML; every value
    that comes from the defaults rather than the YAML chain, the overrides or the run options is marked."""
    import yaml

    from specenh.train import check_config

    resolved = check_config(name, cfg)
    if inference:
        resolved = {**resolved, "inference": inference}
    stated = set(_flat_keys({**cfg, "inference": inference}))
    lines = [f"# specenh train-frontend --name {name}: the resolved training config ('# default': not set by the "
             "config, its base: chain, the overrides or --seed/--num-threads)"]

    def emit(d: dict, prefix: str, indent: str) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                lines.append(f"{indent}{k}:")
                emit(v, key + ".", indent + "  ")
                continue
            text = yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
            text = text[:-4].rstrip() if text.endswith("\n...") else text.removesuffix("...").strip()
            lines.append(f"{indent}{k}: {text}" + ("" if key in stated else "  # default"))

    emit(resolved, "", "")
    return "\n".join(lines) + "\n"


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def set_inference_defaults(path: str | Path, inference: dict) -> None:
    """Store the config's ``inference:`` options in the trained ``model.pt`` (stage 5/7 and ``specenh
    enhance`` use them unless a variant overrides them). The file is rewritten only when they change it."""
    if not inference:
        return
    from specenh.frontends.base import load

    fe = load(path)
    before = (fe.inference_defaults(), dict(fe.config))
    fe.configure_inference(**inference)
    if (fe.inference_defaults(), dict(fe.config)) != before:
        fe.save(path)
        log.info("%s: inference defaults %s", path, inference)


def online_spec(args: argparse.Namespace):
    """``--train-data online``: the clean training set, the conditions' YAML files and the features."""
    from specenh.features.extract import feature_config_from_file
    from specenh.train.online import OnlineSpec

    conf_dir, clean = Path(args.degrade_conf_dir), Path(args.data_root) / args.train_set
    if not (clean / "wav.scp").is_file():
        raise FileNotFoundError(f"--train-data online reads the clean training audio: {clean}/wav.scp not found")
    files = {f"{args.train_set}_{c}": conf_dir / f"{c}.yaml" for c in args.conditions}
    from specenh.degrade.sweep import find_condition

    missing = [str(p) for p in files.values() if not p.is_file() and find_condition(p) is None]
    if missing:
        raise FileNotFoundError(f"--train-data online: condition files not found: {missing} (--degrade-conf-dir)")
    spec = OnlineSpec(data_dir=clean, condition_files=files, feature_config=feature_config_from_file(args.feature_config),
                      seed=int(args.seed or 0), mix=bool(args.online_mix))
    log.info("training pairs made on the fly from %s: %d conditions (%s), degradation seed %d", clean, len(files),
             "one drawn per utterance and epoch" if spec.mix else "every (condition, utterance) pair", spec.seed)
    return spec


def apply_run_options(cfg: dict, args: argparse.Namespace) -> None:
    """``--seed`` and ``--num-threads`` set ``train.seed`` / ``train.num_threads`` (an explicit
    ``train.seed=...`` override on the command line wins over ``--seed``)."""
    train = cfg.setdefault("train", {}) if isinstance(cfg.get("train", {}), dict) else None
    if train is None:
        raise ValueError("the config's 'train' section must be a mapping")
    explicit = {o.split("=", 1)[0].strip().lstrip("-") for o in getattr(args, "overrides", []) or []}
    if args.seed is not None and "train.seed" not in explicit:
        train["seed"] = int(args.seed)
    if args.num_threads is not None and "train.num_threads" not in explicit:
        train["num_threads"] = int(args.num_threads)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-frontend", help="train one front-end on degraded/clean pairs (stage 4)")
    p.add_argument("--name", required=True)
    p.add_argument("--config", default=None, help="YAML (e.g. conf/frontend/<name>.yaml)")
    p.add_argument("--feats-root", default="dump/feats")
    p.add_argument("--data-root", default="data")
    p.add_argument("--train-set", default="train")
    p.add_argument("--valid-set", default="dev")
    p.add_argument("--conditions", nargs="+", default=None, help="training conditions (<set>_<cond> dirs; required)")
    p.add_argument("--asr-model", default=None, help="frozen ASR for ASR-feature losses")
    p.add_argument("--exp-dir", default=None, help="where the checkpoints, logs and model.pt go (required)")
    p.add_argument("--seed", type=int, default=None, help="sets train.seed (default: the config's)")
    p.add_argument("--num-threads", type=int, default=None, help="sets train.num_threads (torch CPU threads)")
    p.add_argument("--overwrite", action="store_true", help="discard checkpoints and train from scratch")
    p.add_argument("--train-data", choices=("precomputed", "online"), default="precomputed",
                   help="precomputed: stage 2/3's training pairs; online: degrade and featurise the clean "
                        "--train-set on the fly (specenh.train.online; validation stays precomputed)")
    p.add_argument("--degrade-conf-dir", default="conf/degrade", help="online: <dir>/<condition>.yaml")
    p.add_argument("--feature-config", default=None,
                   help="online: the feature settings (stage 3's --feature-config: a NeMo model config or "
                        "FeatureConfig keys; default: the default FeatureConfig)")
    p.add_argument("--online-mix", action="store_true",
                   help="online: one item per utterance with a condition drawn per epoch, instead of one item "
                        "per (condition, utterance) pair")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved training config (defaults marked) and exit; trains nothing")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    p.set_defaults(func=_run)
