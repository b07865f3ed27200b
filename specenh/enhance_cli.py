"""``specenh enhance``: thin CLI over :func:`specenh.enhance.enhance_feats_dir`."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from specenh.enhance import enhance_feats_dir  # torch: only when the command runs

    enhance_feats_dir(args.feats_dir, args.frontend, args.out_dir, batch_size=args.batch_size,
                      clean_feats_dir=args.clean_feats_dir, device=args.device, frontend_opts=args.frontend_opts)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enhance", help="write a front-end's enhanced features as a new feature dir")
    p.add_argument("--feats-dir", required=True)
    p.add_argument("--frontend", required=True, help="registered name or checkpoint path")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--frontend-opts", nargs="*", default=None, help="key=value (e.g. psi=0.7)")
    p.add_argument("--clean-feats-dir", default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_run)
