"""``specenh prepare-mini``: generate the embedded synthetic corpus of ``egs/mini``."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def _prepare_mini(args: argparse.Namespace) -> int:
    from specenh.data.synthetic import EspeakError, prepare_mini

    try:
        prepare_mini(args.out_dir, args.wav_dir, seed=args.seed, num_train=args.num_train, num_dev=args.num_dev,
                     num_test=args.num_test, num_jobs=args.nj)
    except (EspeakError, ValueError) as e:
        log.error("%s", e)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare-mini`` to ``specenh``."""
    p = subparsers.add_parser(
        "prepare-mini", help="synthesise the multi-voice espeak-ng corpus (data/{train,dev,test} + wavs)",
        description="Generate the synthetic corpus of egs/mini: Kaldi data dirs OUT_DIR/{train,dev,test} and "
                    "16 kHz wavs WAV_DIR/<set>/<utt>.wav. Deterministic in --seed; re-running is a no-op.")
    p.add_argument("--out-dir", required=True, help="where the data dirs go (e.g. data)")
    p.add_argument("--wav-dir", required=True, help="where the wavs go (e.g. downloads/mini/wav)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-train", type=int, default=3000)
    p.add_argument("--num-dev", type=int, default=200)
    p.add_argument("--num-test", type=int, default=300)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    p.set_defaults(func=_prepare_mini)
