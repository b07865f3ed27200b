"""``specenh report``: stage 6 (RESULTS.md and plots from the stage-5 decode dirs)."""
from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from specenh.report.results import write_report

    commands = []
    history = Path(args.history) if args.history else None
    if history is not None and history.is_file():  # every invocation, in order: the table's whole making
        commands = read_history(history)
    else:
        for p in args.commands or []:
            f = Path(p)
            commands.append(f.read_text().strip().splitlines()[-1] if f.is_file() else p)
    write_report(args.decode_dir, args.out, test_sets=args.test_sets, plots_dir=args.plots_dir,
                 asr_dir=args.asr_dir, commands=commands, title=args.title, frontend_order=args.frontends,
                 resynth_dir=args.resynth_dir, history=bool(history is not None and history.is_file()),
                 data_root=args.data_root)
    print(Path(args.out).read_text())
    return 0


def read_history(path: Path) -> list[str]:
    """The recipe's invocations (``exp/run.history``, one per line, written by the driver), repeats of the
    line just before dropped."""
    out: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and (not out or out[-1] != line):
            out.append(line)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="RESULTS.md and plots from stage-5 decodes (stage 6)")
    p.add_argument("--decode-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--test-sets", nargs="+", required=True)
    p.add_argument("--frontends", nargs="*", default=None, help="column order")
    p.add_argument("--plots-dir", default=None)
    p.add_argument("--asr-dir", default=None)
    p.add_argument("--resynth-dir", default=None, help="stage-7 outputs: adds the signal-metric table")
    p.add_argument("--title", default="Results")
    p.add_argument("--data-root", default=None, help="the recipe's data dirs (names those with pseudo-references)")
    p.add_argument("--commands", nargs="*", help="commands (or files whose last line is one) to list")
    p.add_argument("--history", default=None,
                   help="the driver's exp/run.history (every invocation, in order); listed instead of --commands")
    p.set_defaults(func=_run)
