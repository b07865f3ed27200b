#!/usr/bin/env python3
"""spk2utt -> utt2spk (stdlib only).

Usage: utils/spk2utt_to_utt2spk.py [spk2utt] > utt2spk     (stdin when no file or '-')

Utterances are written in C (byte) order.
"""
from __future__ import annotations

import sys


def convert(lines, src: str = "spk2utt") -> dict[str, str]:
    """{utterance: speaker} from '<spk> <utt1> <utt2> ...' lines; ValueError names the line."""
    utt2spk: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"{src}:{lineno}: expected '<spk> <utt> ...', got {line.rstrip()!r}")
        spk, utts = parts[0], parts[1:]
        for utt in utts:
            if utt in utt2spk:
                raise ValueError(f"{src}:{lineno}: utterance {utt!r} already listed under speaker {utt2spk[utt]!r}")
            utt2spk[utt] = spk
    return utt2spk


def main(argv: list[str]) -> int:
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip(), file=sys.stderr)
        return 1
    src = argv[0] if argv else "-"
    try:
        f = sys.stdin if src == "-" else open(src, encoding="utf-8")
        with f:
            utt2spk = convert(f, src)
    except (OSError, ValueError) as e:
        print(f"spk2utt_to_utt2spk.py: {e}", file=sys.stderr)
        return 1
    for utt in sorted(utt2spk, key=lambda u: u.encode("utf-8")):
        sys.stdout.write(f"{utt} {utt2spk[utt]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
