"""A fixed random subset of a Kaldi data dir (the validation subset of ``--train_data online``).

``python -m specenh.data.subset --src data/dev --out data/dev_sub100 --num-utts 100 --seed 0`` keeps
``num_utts`` utterances chosen by a permutation seeded with ``seed`` (the same on every machine), and
every per-utterance file of the source restricted to them (``wav.scp``, ``utt2spk``, ``text``,
``utt2dur``, ``spk2utt`` derived; speaker files such as ``spk2gender`` restricted to the kept speakers).
With ``num_utts`` at least the set's size the subset is the whole set.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from specenh.data.kaldi import load_data_dir, read_kv, save_data_dir, write_kv

SPEAKER_FILES = ("spk2gender",)


def subset_utts(utts: list[str], num_utts: int, seed: int) -> list[str]:
    """``num_utts`` of ``utts`` by a seeded permutation, in the input order."""
    if num_utts <= 0:
        raise ValueError(f"num_utts must be positive, got {num_utts}")
    if num_utts >= len(utts):
        return list(utts)
    keep = set(np.random.default_rng([int(seed), len(utts)]).permutation(len(utts))[:num_utts].tolist())
    return [u for i, u in enumerate(utts) if i in keep]


def subset_data_dir(src: str | Path, out: str | Path, num_utts: int, seed: int = 0) -> list[str]:
    """Write the subset of ``src`` to ``out``; returns the kept utterance ids."""
    src, out = Path(src), Path(out)
    extra_names = sorted(p.name for p in src.iterdir() if p.is_file() and (p.name.endswith(".scp") or p.name.startswith(
        "utt2")) and p.name not in ("wav.scp", "utt2spk", "utt2dur"))  # per-utterance files
    d = load_data_dir(src, extra=extra_names)
    keep = subset_utts(d.utt_ids, num_utts, seed)
    d = d.subset(keep)
    save_data_dir(d, out)
    spks = set(d.utt2spk.values())
    for name in SPEAKER_FILES:
        if (src / name).is_file():
            write_kv(out / name, {s: v for s, v in read_kv(src / name).items() if s in spks})
    return keep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--num-utts", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    keep = subset_data_dir(a.src, a.out, a.num_utts, a.seed)
    print(f"{a.out}: {len(keep)} utterances of {a.src}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
