"""``specenh decode``: stage 5 (one job, or ``--merge`` to collect and score)."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    if len(args.feats_dir) != len(args.out_dir):
        raise SystemExit(f"specenh decode: {len(args.feats_dir)} --feats-dir but {len(args.out_dir)} --out-dir")
    if args.merge:
        from specenh.decode_merge import merge_and_score

        for fdir, odir in zip(args.feats_dir, args.out_dir):
            merge_and_score(fdir, odir, nj=args.nj, frontend=args.frontend, asr_model=args.asr_model,
                            n_boot=args.n_boot, seed=args.seed)
    else:
        from specenh.decode import decode_job

        decode_job(args.feats_dir, args.frontend, args.asr_model, args.out_dir, nj=args.nj, job=args.job,
                   batch_size=args.batch_size, clean_feats_dir=args.clean_feats_dir, device=args.device,
                   num_threads=args.num_threads, overwrite=args.overwrite,
                   frontend_opts=args.frontend_opts)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="enhance with a front-end, decode with the frozen ASR, score (stage 5)")
    p.add_argument("--feats-dir", required=True, nargs="+",
                   help="stage-3 feature dir(s) of (degraded) sets; several share one ASR/front-end load")
    p.add_argument("--out-dir", required=True, nargs="+", help="one output dir per --feats-dir")
    p.add_argument("--frontend", required=True, help="registered name (identity, oracle, ...) or checkpoint path")
    p.add_argument("--asr-model", required=True, help="pretrained NeMo name or .nemo path")
    p.add_argument("--frontend-opts", nargs="*", default=None,
                   help="key=value options: constructor arguments of a named front-end, inference options "
                        "of a checkpoint (e.g. psi=0.7)")
    p.add_argument("--clean-feats-dir", default=None, nargs="+",
                   help="clean features of the same utterances (oracle): one dir, or one per --feats-dir")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--merge", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_run)
