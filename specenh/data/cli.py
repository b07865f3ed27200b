"""Data-dir subcommands: ``validate-data-dir``, ``fix-data-dir``, ``export-manifest``, ``compute-utt2dur``."""
from __future__ import annotations

import argparse
import logging

from specenh.data.kaldi import DataDirError, compute_utt2dur
from specenh.data.manifest import data_dir_to_manifest
from specenh.data.validate import SUBSAMPLING, fix_data_dir, validate_data_dir

log = logging.getLogger(__name__)


def _run(action, *args, **kwargs) -> int:
    """Call ``action``; log a DataDirError (it names file and line) and return 1 instead of a traceback."""
    try:
        action(*args, **kwargs)
    except DataDirError as e:
        log.error("%s", e)
        return 1
    return 0


def _validate(args: argparse.Namespace) -> int:
    return _run(validate_data_dir, args.path, require_text=not args.no_text, check_audio=args.check_audio,
                check_sorted=not args.no_check_sorted, subsampling=args.subsampling)


def _fix(args: argparse.Namespace) -> int:
    return _run(fix_data_dir, args.path, check_audio=args.check_audio, subsampling=args.subsampling)


def _export(args: argparse.Namespace) -> int:
    return _run(data_dir_to_manifest, args.data_dir, args.out_path, feats_scp=args.feats_scp)


def _utt2dur(args: argparse.Namespace) -> int:
    return _run(compute_utt2dur, args.data_dir)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the data subcommands to ``specenh``: data dirs, and the corpus preparers."""
    register_data_dir(subparsers)
    # the corpus preparers' subcommands (their own modules: the synthetic corpus's is large)
    from specenh.data import corpora_cli, synthetic_cli

    corpora_cli.register(subparsers)
    synthetic_cli.register(subparsers)


def register_data_dir(subparsers: argparse._SubParsersAction) -> None:
    """The data-dir subcommands (validate, fix, export, utt2dur)."""
    p = subparsers.add_parser("validate-data-dir", help="check a Kaldi data dir; non-zero exit on any problem")
    p.add_argument("path", help="data dir")
    p.add_argument("--no-text", action="store_true", help="a text file is not required (still checked if present)")
    p.add_argument("--check-audio", action="store_true",
                   help="also decode every audio file (unreadable, truncated, empty, NaN, silent, not as long as "
                        "utt2dur says)")
    p.add_argument("--no-check-sorted", action="store_true", help="accept files not in C order")
    p.add_argument("--subsampling", type=int, default=SUBSAMPLING,
                   help="encoder subsampling of the transcript-length check (an utterance needs at least one "
                        "frame per word after it)")
    p.set_defaults(func=_validate)

    p = subparsers.add_parser("fix-data-dir", help="drop broken/unmatched utterances, sort, rebuild spk2utt "
                                                   "(originals kept in <dir>/.backup)")
    p.add_argument("path", help="data dir")
    p.add_argument("--check-audio", action="store_true",
                   help="also decode every audio file and drop unreadable, truncated, empty, NaN or silent ones")
    p.add_argument("--subsampling", type=int, default=SUBSAMPLING, help="as for validate-data-dir")
    p.set_defaults(func=_fix)

    p = subparsers.add_parser("export-manifest", help="write a NeMo JSON-lines manifest of a data dir")
    p.add_argument("data_dir")
    p.add_argument("out_path")
    p.add_argument("--feats-scp", default=None, help="add feature_filepath entries from this feats.scp")
    p.set_defaults(func=_export)

    p = subparsers.add_parser("compute-utt2dur", help="write <data_dir>/utt2dur from the audio headers")
    p.add_argument("data_dir")
    p.set_defaults(func=_utt2dur)


def main(argv: list[str] | None = None) -> int:
    """``python -m specenh.data.cli <subcommand>``: the data-dir subcommands alone (used by utils/*.sh,
    so they work even while other stages' modules are broken or their heavy imports are missing)."""
    from specenh.utils.log import setup_logging

    parser = argparse.ArgumentParser(prog="python -m specenh.data.cli", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    register_data_dir(sub)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    import sys

    sys.exit(main())
