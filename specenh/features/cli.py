"""``specenh extract-feats``: stage 3 feature extraction (one job, or the merge)."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    # imported here: building the CLI parser must not import torch (every stage step starts a process)
    from specenh.features.extract import extract_job, feature_config_from_file, merge_jobs

    cfg = feature_config_from_file(args.feature_config)
    if args.merge:
        merge_jobs(args.data_dir, args.out_dir, cfg, nj=args.nj)
    else:
        extract_job(args.data_dir, args.out_dir, cfg, nj=args.nj, job=args.job, batch_size=args.batch_size,
                    num_threads=args.num_threads, overwrite=args.overwrite)
        if args.nj == 1:  # the only job: nothing to wait for, so write feats.scp now
            merge_jobs(args.data_dir, args.out_dir, cfg, nj=1)
        else:
            import logging

            logging.getLogger(__name__).info(
                "job %d of %d written to %s; feats.scp comes when all %d jobs are done: specenh extract-feats "
                "--data-dir %s --out-dir %s --nj %d --merge%s", args.job, args.nj, args.out_dir, args.nj, args.data_dir,
                args.out_dir, args.nj, f" --feature-config {args.feature_config}" if args.feature_config else "")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract-feats", help="log-mel features matching the frozen ASR (stage 3)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--feature-config", default=None,
                   help="YAML: a NeMo model config (its preprocessor section) or FeatureConfig keys")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--merge", action="store_true",
                   help="merge the nj job outputs into feats.scp (done by the job itself when --nj is 1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_run)
