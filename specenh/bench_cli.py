"""``specenh bench``: speed benchmarks (see :mod:`specenh.bench`)."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from specenh import bench

    rows = bench.run(args.sections, device=args.device, threads=args.threads, quick=args.quick, out_json=args.out)
    print(f"machine: {bench.machine_info(args.device)}")
    print(bench.format_table(rows))
    print(f"written: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (x real time), side by side with reference implementations")
    p.add_argument("--sections", nargs="+", default=["features"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="CPU thread counts to measure (default 1 2)")
    p.add_argument("--quick", action="store_true", help="small and short (CI smoke test)")
    p.add_argument("--out", default="exp/bench/bench.json")
    p.set_defaults(func=_run)
