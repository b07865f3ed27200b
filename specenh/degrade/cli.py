"""``specenh degrade``: stage 2 (degradation simulation) over a Kaldi data dir.

Typical recipe use (Kaldi convention)::

    $cmd JOB=1:$nj log/degrade.JOB.log specenh degrade --src-dir data/test --condition conf/degrade/noise_5db.yaml \\
        --out-dir data/test_noise_5db --wav-dir dump/wav/test_noise_5db --split test --nj $nj --job JOB
    specenh degrade --out-dir data/test_noise_5db --nj $nj --merge

With ``--nj 1`` the merge happens at the end of the job. Trailing ``key=value`` arguments override
the condition (``steps.0.snr=[0]``).
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("degrade", help="stage 2: degrade a data dir under a condition (conf/degrade/*.yaml)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src-dir", help="source Kaldi data dir (clean)")
    p.add_argument("--condition", help="condition YAML (conf/degrade/<name>.yaml)")
    p.add_argument("--out-dir", help="output data dir (data/<set>_<cond>)")
    p.add_argument("--wav-dir", help="where degraded wavs go (default: <out-dir>/wav)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="noise pool (train/test disjoint)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the per-utterance RNGs")
    p.add_argument("--nj", type=int, default=1, help="number of jobs")
    p.add_argument("--job", type=int, default=1, help="this job's index, 1..nj")
    p.add_argument("--merge", action="store_true", help="only merge the nj finished jobs into --out-dir")
    p.add_argument("--overwrite", action="store_true", help="redo a job even if it has finished")
    p.add_argument("--list", action="store_true", help="list the registered degradations and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="condition overrides (steps.0.snr=[0])")
    p.set_defaults(func=run_degrade)


def run_degrade(args: argparse.Namespace) -> int:
    from specenh.data.audio import AudioError
    from specenh.data.kaldi import DataDirError
    from specenh.degrade.apply import degrade_data_dir, merge_jobs
    from specenh.degrade.condition import DegradeError
    from specenh.degrade.registry import available_degradations
    from specenh.utils.config import ConfigError

    if args.list:
        print("\n".join(available_degradations()))
        return 0
    if not args.out_dir:
        log.error("--out-dir is required")
        return 2
    try:
        if args.merge:
            merge_jobs(args.out_dir, args.nj)
            return 0
        if not args.src_dir or not args.condition:
            log.error("--src-dir and --condition are required (unless --merge or --list)")
            return 2
        degrade_data_dir(args.src_dir, args.condition, args.out_dir, args.wav_dir or f"{args.out_dir}/wav",
                         split=args.split, seed=args.seed, nj=args.nj, job=args.job,
                         overrides=args.overrides, overwrite=args.overwrite)
    except (AudioError, DataDirError, ConfigError, DegradeError, RuntimeError, ValueError, OSError) as e:
        log.error("%s", e)  # each names the file and utterance, or the path (a full disk), or the lock holders
        return 1
    return 0
