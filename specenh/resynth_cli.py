"""``specenh resynth``: stage 7, resynthesis to waveform + signal metrics for one set and one or more
front-ends (the per-set references are computed once for all of them)."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from specenh.resynth import resynthesize_set

    if len(args.frontend) != len(args.out_dir):
        raise SystemExit(f"specenh resynth: {len(args.frontend)} --frontend but {len(args.out_dir)} --out-dir")
    resynthesize_set(args.feats_dir, args.frontend, args.out_dir, method=args.method, n_iter=args.n_iter,
                     num_examples=args.num_examples, max_utts=args.max_utts or None, data_dir=args.data_dir,
                     batch_size=args.batch_size, inversion=args.inversion, degli_model=args.degli_model,
                     refiner_model=args.refiner_model, device=args.device, num_threads=args.num_threads,
                     overwrite=args.overwrite)
    return 0


def _panel(args: argparse.Namespace) -> int:
    from specenh.resynth import condition_panel

    condition_panel(args.feats_dir, args.frontends, args.out, labels=args.labels,
                    clean_feats_dir=args.clean_feats_dir, utt=args.utt, device=args.device)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("panel", help="spectrogram panel of one utterance: clean / degraded / each front-end")
    q.add_argument("--feats-dir", required=True, help="stage-3 feature dir of a degraded set")
    q.add_argument("--clean-feats-dir", default=None, help="clean features of the same utterances")
    q.add_argument("--frontends", nargs="+", required=True, help="names, checkpoints or inference-variant YAMLs")
    q.add_argument("--labels", nargs="+", default=None, help="row labels (default: the specs)")
    q.add_argument("--utt", default=None, help="utterance id (default: the first)")
    q.add_argument("--out", required=True, help="PNG path")
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=_panel)

    p = sub.add_parser("resynth", help="resynthesise enhanced features to audio and compute signal metrics (stage 7)")
    p.add_argument("--feats-dir", required=True, help="stage-3 feature dir of a (degraded) set")
    p.add_argument("--frontend", required=True, nargs="+",
                   help="registered name(s) (identity, specsub, ...) or checkpoint path(s)")
    p.add_argument("--out-dir", required=True, nargs="+", help="one output dir per --frontend")
    p.add_argument("--data-dir", default=None, help="degraded data dir (for utt2gain / clean.scp if not in feats dir)")
    p.add_argument("--num-examples", type=int, default=3, help="utterances written as wavs")
    p.add_argument("--method", default="fgla", choices=["gla", "fgla", "degli"], help="phase reconstruction")
    p.add_argument("--n-iter", type=int, default=32)
    p.add_argument("--inversion", default="pinv", choices=["pinv", "nnls"], help="mel -> linear magnitude")
    p.add_argument("--degli-model", default=None, help="trained DeGLI denoiser (needed by --method degli)")
    p.add_argument("--refiner-model", default=None, help="trained mel refiner (optional)")
    p.add_argument("--max-utts", type=int, default=50, help="first N utterances (sorted ids); 0 = all")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_run)
