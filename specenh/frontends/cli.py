"""``specenh export``: a log-mel front-end as an ONNX graph (see :mod:`specenh.frontends.export`);
``specenh tune-auto``: ``auto``'s selection margin chosen on validation decodes (:mod:`specenh.frontends.auto_tune`)."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def _export(args: argparse.Namespace) -> int:
    from specenh.frontends.base import parse_options, resolve
    from specenh.frontends.export import check_on_data, export, require_packages

    require_packages(runtime=not args.no_check or bool(args.check_scp))
    fe = resolve(args.frontend, parse_options(args.frontend_opts))
    res = export(fe, args.out, check=not args.no_check)
    size_mb = res.path.stat().st_size / 2**20
    print(f"exported {args.frontend} -> {res.path} ({size_mb:.1f} MB) in {res.seconds:.1f} s")
    diffs = []
    if res.max_abs_diff is not None:
        print(f"onnxruntime vs PyTorch, random inputs, one batch of {res.check_frames} frames (10 ms): "
              f"max abs diff {res.max_abs_diff:.2e}")
        diffs.append(res.max_abs_diff)
    if args.check_scp:
        chk = check_on_data(fe, res.path, args.check_scp, args.check_utts)
        unit = "samples" if fe.domain == "wave" else "frames"
        print(f"onnxruntime vs PyTorch, {len(chk['utts'])} utterances of {args.check_scp} ({chk['lengths']} {unit}; "
              f"each alone and as one batch): max abs diff {chk['max_abs_diff']:.2e}")
        diffs.append(chk["max_abs_diff"])
    if diffs and max(diffs) > args.tolerance:
        log.error("onnxruntime differs from PyTorch by %.2e > --tolerance %.0e", max(diffs), args.tolerance)
        return 1
    return 0


def _tune_auto(args: argparse.Namespace) -> int:
    from specenh.frontends.auto_tune import (first_looks_of, format_table, harm_p_of, load_set, margins_of,
                                             prune_of, tune_first_look, tune_margin, tune_prune, write_tuned)

    margins = [float(m) for m in args.margins] if args.margins else margins_of(args.config)
    sets = [load_set(d) for d in args.decode_dirs]
    res = tune_margin(sets, margins, harm_p=harm_p_of(args.config))
    tol = prune_of(args.config)
    if tol is not None:
        sets = tune_prune(sets, res, tol)
    grid = first_looks_of(args.config)
    if grid:
        tune_first_look(sets, res, grid)
    out = write_tuned(args.config, res, args.out)
    print(format_table(res))
    print(f"margin {res.margin:g}" + (f", first look {res.first_look:g}" if grid else "")
          + (f", dropped {res.drop}" if tol is not None else "") + f" -> {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tune-auto", help="choose auto's selection margin on validation decodes (candidates.jsonl)")
    t.add_argument("--config", required=True,
                   help="the auto YAML (members:, optional tune: {margins: [...], harm_p: p, prune: tol, "
                        "first_look: [...]})")
    t.add_argument("--decode-dirs", nargs="+", required=True,
                   help="merged decode dirs of the validation sets, decoded with --config (candidates.jsonl)")
    t.add_argument("--out", required=True, help="the tuned YAML to write (stage 5 decodes with it)")
    t.add_argument("--margins", nargs="*", default=None, help="the grid (default: the config's tune: margins)")
    t.set_defaults(func=_tune_auto)

    p = sub.add_parser("export", help="export a log-mel front-end to ONNX (inference options fixed, dynamic batch and time)")
    p.add_argument("--frontend", required=True, help="model.pt, inference-variant YAML or registered name")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--frontend-opts", nargs="*", default=None,
                   help="inference options baked into the graph, key=value (e.g. psi=0.5 alpha=0.7)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch comparison")
    p.add_argument("--check-scp", default=None,
                   help="also compare on real data: a stage-3 feats.scp (log-mel front-ends) or a data dir's wav.scp "
                        "(mask); paths in it relative to the working directory")
    p.add_argument("--check-utts", type=int, default=4, help="utterances of --check-scp to compare")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed max abs difference of the check (exit status 1 above it)")
    p.set_defaults(func=_export)
