#!/usr/bin/env python3
"""Split an scp / ``<key> <value>`` file into N contiguous parts (stdlib only).

Usage:
  utils/split_scp.py [--utt2spk FILE] in.scp out.1.scp ... out.N.scp
  utils/split_scp.py [--utt2spk FILE] --nj N --job J in.scp      # part J (1-based) to stdout

Part j of N gets lines [n*(j-1)//N, n*j//N) of the n lines, the same chunks as
``specenh.utils.io.split_for_job``. With ``--utt2spk`` the speakers (in order of first appearance)
are chunked that way instead, so a speaker's utterances never straddle two parts. Refuses to
write empty parts. Use ``-`` for stdin.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "split_scp.py"


class SplitError(Exception):
    """Bad input; the message names the file and line."""


def chunk_bounds(n: int, nj: int, job: int) -> tuple[int, int]:
    """[start, end) of part ``job`` (1-based) of ``nj`` over ``n`` items."""
    return n * (job - 1) // nj, n * job // nj


def read_lines(path: str) -> list[tuple[str, str]]:
    """(key, full line) for each non-empty line."""
    f = sys.stdin if path == "-" else open(path, encoding="utf-8")
    out = []
    with f:
        for lineno, line in enumerate(f, 1):
            parts = line.split(maxsplit=1)
            if not parts:
                raise SplitError(f"{path}:{lineno}: empty line")
            out.append((parts[0], line if line.endswith("\n") else line + "\n"))
    return out


def read_utt2spk(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2:
                raise SplitError(f"{path}:{lineno}: expected '<utt> <spk>', got {line.rstrip()!r}")
            out[parts[0]] = parts[1]
    return out


def split(lines: list[tuple[str, str]], nj: int, utt2spk: dict[str, str] | None = None,
          src: str = "input") -> list[list[str]]:
    """The ``nj`` parts (lists of lines); by speaker when ``utt2spk`` is given."""
    if utt2spk is None:
        units = [[line] for _, line in lines]
    else:
        by_spk: dict[str, list[str]] = {}
        for lineno, (key, line) in enumerate(lines, 1):
            if key not in utt2spk:
                raise SplitError(f"{src}:{lineno}: utterance {key!r} is not in utt2spk")
            by_spk.setdefault(utt2spk[key], []).append(line)
        units = list(by_spk.values())
    what = "speakers" if utt2spk is not None else "lines"
    if len(units) < nj:
        raise SplitError(f"cannot split {len(units)} {what} of {src} into {nj} non-empty parts")
    parts = []
    for job in range(1, nj + 1):
        start, end = chunk_bounds(len(units), nj, job)
        parts.append([line for unit in units[start:end] for line in unit])
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--utt2spk", help="split by speaker")
    p.add_argument("--nj", type=int, help="number of parts (with --job: print one part)")
    p.add_argument("--job", type=int, help="1-based part to print to stdout")
    p.add_argument("input")
    p.add_argument("outputs", nargs="*")
    args = p.parse_args(argv)
    try:
        if args.outputs:
            if args.nj is not None or args.job is not None:
                raise SplitError("give either output files or --nj/--job, not both")
            nj = len(args.outputs)
        else:
            if args.nj is None or args.job is None:
                raise SplitError("give output files, or --nj N --job J")
            if not 1 <= args.job <= args.nj:
                raise SplitError(f"need 1 <= job <= nj, got job={args.job} nj={args.nj}")
            nj = args.nj
        utt2spk = read_utt2spk(args.utt2spk) if args.utt2spk else None
        parts = split(read_lines(args.input), nj, utt2spk, src=args.input)
    except (SplitError, OSError, UnicodeDecodeError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    if not args.outputs:
        sys.stdout.writelines(parts[args.job - 1])
        return 0
    for out, lines in zip(args.outputs, parts):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
