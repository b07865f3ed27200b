"""``specenh <subcommand>``: one thin subcommand per stage step.

Each package that offers commands has one ``<package>/cli.py`` with ``register(subparsers)`` (it may
gather the subcommands of its other modules); the subcommand's handler receives the parsed
``argparse.Namespace``. Logic lives in the packages. A command module that fails to import is an
error, never a silently missing subcommand.
"""
from __future__ import annotations

import argparse
import logging
import importlib
import sys

from specenh.utils.log import setup_logging

# modules whose cli.register(subparsers) adds subcommands
_COMMAND_MODULES = [
    "specenh.data.cli",
    "specenh.degrade.cli",
    "specenh.features.cli",
    "specenh.asr.cli",
    "specenh.train.cli",
    "specenh.stages.cli",
    "specenh.report.cli",
    "specenh.metrics.cli",
    "specenh.bench.cli",
    "specenh.frontends.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specenh", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name in _COMMAND_MODULES:
        mod = importlib.import_module(name)  # an import error names the module: no subcommand goes missing
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from specenh.utils.proc import die_with_parent

    die_with_parent()  # a job of utils/run.pl ends with it, even if run.pl is killed with kill -9
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        rc = args.func(args)
    except (ValueError, RuntimeError, OSError) as e:  # bad input: one clear line; -v for the traceback
        logging.getLogger("specenh").error("%s: %s", type(e).__name__, e, exc_info=args.verbose > 0)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
