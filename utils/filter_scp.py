#!/usr/bin/env python3
"""Keep the lines of an scp / '<key> <value>' file whose key is in an id list (stdlib only).

Usage: utils/filter_scp.py [--exclude] [-f N] id_list [in.scp] > out.scp

The ids are the first field of each line of id_list. The key of in.scp is its first field, or
field N with -f N (1-based). --exclude keeps the lines whose key is NOT in the list. Lines keep
their input order; in.scp defaults to stdin ('-').
"""
from __future__ import annotations

import argparse
import sys


def read_ids(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {parts[0] for parts in (line.split() for line in f) if parts}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="filter_scp.py", description=__doc__.splitlines()[0])
    p.add_argument("--exclude", action="store_true", help="keep lines whose key is not in the list")
    p.add_argument("-f", "--field", type=int, default=1, help="1-based field of in.scp to match (default 1)")
    p.add_argument("id_list")
    p.add_argument("scp", nargs="?", default="-")
    args = p.parse_args(argv)
    if args.field < 1:
        p.error("-f must be >= 1")
    try:
        ids = read_ids(args.id_list)
        f = sys.stdin if args.scp == "-" else open(args.scp, encoding="utf-8")
        with f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) < args.field:
                    raise ValueError(f"{args.scp}:{lineno}: fewer than {args.field} fields")
                if (fields[args.field - 1] in ids) != args.exclude:
                    sys.stdout.write(line if line.endswith("\n") else line + "\n")
    except (OSError, ValueError) as e:
        print(f"filter_scp.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
