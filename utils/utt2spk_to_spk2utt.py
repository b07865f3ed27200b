#!/usr/bin/env python3
"""utt2spk -> spk2utt (stdlib only).

Usage: utils/utt2spk_to_spk2utt.py [utt2spk] > spk2utt     (stdin when no file or '-')

Speakers are written in C (byte) order, each with its utterances in input order, so a sorted
utt2spk gives the spk2utt that validate-data-dir expects.
"""
from __future__ import annotations

import sys


def convert(lines, src: str = "utt2spk") -> dict[str, list[str]]:
    """{speaker: [utterances]} from '<utt> <spk>' lines; ValueError names the line."""
    spk2utt: dict[str, list[str]] = {}
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{src}:{lineno}: expected '<utt> <spk>', got {line.rstrip()!r}")
        utt, spk = parts
        if utt in seen:
            raise ValueError(f"{src}:{lineno}: duplicate utterance {utt!r}")
        seen.add(utt)
        spk2utt.setdefault(spk, []).append(utt)
    return spk2utt


def main(argv: list[str]) -> int:
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip(), file=sys.stderr)
        return 1
    src = argv[0] if argv else "-"
    try:
        f = sys.stdin if src == "-" else open(src, encoding="utf-8")
        with f:
            spk2utt = convert(f, src)
    except (OSError, ValueError) as e:
        print(f"utt2spk_to_spk2utt.py: {e}", file=sys.stderr)
        return 1
    for spk in sorted(spk2utt, key=lambda s: s.encode("utf-8")):
        sys.stdout.write(f"{spk} {' '.join(spk2utt[spk])}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
