"""``specenh export``: a log-mel front-end as an ONNX graph (see :mod:`specenh.frontends.export`)."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def _export(args: argparse.Namespace) -> int:
    from specenh.frontends.base import parse_options
    from specenh.frontends.export import export_spec

    res = export_spec(args.frontend, args.out, parse_options(args.frontend_opts), check=not args.no_check)
    size_mb = res.path.stat().st_size / 2**20
    line = f"exported {args.frontend} -> {res.path} ({size_mb:.1f} MB) in {res.seconds:.1f} s"
    if res.max_abs_diff is None:
        print(line)
        return 0
    print(f"{line}; onnxruntime vs PyTorch on {len(res.check_frames)} utterances of {res.check_frames} frames: "
          f"max abs diff {res.max_abs_diff:.2e}")
    if res.max_abs_diff > args.tolerance:
        log.error("onnxruntime differs from PyTorch by %.2e > --tolerance %.0e", res.max_abs_diff, args.tolerance)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a log-mel front-end to ONNX (inference options fixed, dynamic batch and time)")
    p.add_argument("--frontend", required=True, help="model.pt, inference-variant YAML or registered name")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--frontend-opts", nargs="*", default=None,
                   help="inference options baked into the graph, key=value (e.g. psi=0.5 alpha=0.7)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch comparison")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed max abs difference of the check (exit status 1 above it)")
    p.set_defaults(func=_export)
