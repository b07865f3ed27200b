"""``specenh bench``: speed benchmarks (see :mod:`specenh.bench`)."""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from specenh import bench  # the package (specenh/bench/__init__.py)

    sections = list(bench.SECTIONS) if args.sections == ["all"] else args.sections
    rows = bench.run(sections, device=args.device, threads=args.threads, quick=args.quick, out_json=args.out,
                     frontends=args.frontends, asr_model=args.asr_model, recipe_dir=args.recipe_dir,
                     train_config=args.train_config, work_dir=args.work_dir, num_utts=args.num_utts,
                     onnx=args.onnx, batch_frames=args.batch_frames, varied_lengths=args.varied_lengths,
                     condition=args.condition, max_utts=args.max_utts)
    print(f"machine: {bench.machine_info(args.device)}")
    print(bench.format_table(rows))
    print(f"written: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (x real time), side by side with reference implementations")
    p.add_argument("--sections", nargs="+", default=["all"],
                   help="all, or any of: features frontends asr stage5 train vocoder loader")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=None, help="CPU thread counts to measure (default 1 2)")
    p.add_argument("--quick", action="store_true", help="small and short (CI smoke test)")
    p.add_argument("--out", default="exp/bench/bench.json")
    p.add_argument("--frontends", nargs="+", default=None,
                   help="front-ends to time (names or checkpoints); default: every registered one, default size")
    p.add_argument("--asr-model", default=None,
                   help=".nemo or pretrained name for the asr/train sections (default: a random mini Conformer); "
                        "for stage5 the default is <recipe-dir>/exp/asr/model.nemo")
    p.add_argument("--recipe-dir", default="egs/mini",
                   help="recipe whose test set the stage5 section decodes; the loader section reads its data/train "
                        "(synthetic audio when absent) and conf/degrade")
    p.add_argument("--train-config", default=None,
                   help="enhancer config for the train section (default egs/mini/conf/frontend/stylegan.yaml)")
    p.add_argument("--work-dir", default="exp/bench", help="where the random ASR is built")
    p.add_argument("--onnx", action="store_true",
                   help="frontends section: also export each exportable front-end to ONNX (into <work-dir>/onnx) and "
                        "time onnxruntime on the CPU with the same inputs and threads; stage5 section: each front-end "
                        "also under --runtime onnx (needs pip install -e .[export])")
    p.add_argument("--num-utts", type=int, default=None, help="synthetic utterances (4 s each; default 64, quick 8)")
    p.add_argument("--batch-frames", type=int, default=0,
                   help="frontends section: also length-bucketed batches of at most this many padded frames "
                        "(as specenh decode --batch-frames), next to batch 1 and 32")
    p.add_argument("--varied-lengths", action="store_true",
                   help="synthetic utterances of 1-12 s instead of all 4 s (padding then costs what it does on "
                        "real data)")
    p.add_argument("--condition", default="noise_5db",
                   help="stage5 section: the degraded test set <test>_<condition> it decodes (e.g. real_noise_5db)")
    p.add_argument("--max-utts", type=int, default=None, help="stage5 section: the first N utterances only")
    p.set_defaults(func=_run)
