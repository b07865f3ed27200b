"""Loader throughput of the online training data (``specenh bench --sections loader``).

One process with ``num_workers=0`` and the given torch threads is one DataLoader worker: its x real time
(seconds of clean training audio turned into training batches per second of wall clock) is the figure
per CPU worker. The pipeline timed is stage 4's with ``--train_data online``
(:class:`specenh.train.online.OnlinePairs` + :func:`specenh.train.data.collate_pairs`): read the clean
wav, degrade it under a condition of the recipe (``<recipe>/conf/degrade``), 16-bit PCM, log-mel of the
degraded and of the clean audio, crop, collate. Items are drawn as in training (step-indexed buckets,
epochs advancing, so every item is a fresh draw; nothing is cached but babble's source files).

``xrt_cpu`` (in the row's extra) divides by the process's CPU seconds instead of wall seconds: the
throughput of a worker with a core of its own, also on a machine busy with other work.

Rows: each condition alone, and the mix of all conditions with and without reverb (one drawn per item).
Workers per GPU = (audio seconds a training step consumes x steps per second) / (x real time per worker).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import torch

log = logging.getLogger(__name__)

#: egs/mini's training conditions (run.sh)
DEFAULT_CONDITIONS = ("noise_0db", "noise_5db", "noise_10db", "noise_babble_5db", "bandlimit_2k", "holes30",
                      "codec_mulaw8k", "reverb")


def clean_set(recipe_dir: str | Path, work_dir: str | Path, num_utts: int, seconds: float) -> tuple[Path, str]:
    """A clean data dir of ``num_utts`` utterances: the recipe's ``data/train`` (its first utterances)
    when it exists, else synthetic speech-like audio written under ``work_dir``. -> (dir, description)."""
    from specenh.bench.core import synthetic_audio
    from specenh.data.audio import write_wav
    from specenh.data.kaldi import load_data_dir, save_data_dir

    src = Path(recipe_dir) / "data" / "train"
    out = Path(work_dir) / "loader" / "train"
    if (src / "wav.scp").is_file():
        d = load_data_dir(src)
        sub = d.subset(d.utt_ids[:num_utts])
        save_data_dir(sub, out)
        return out, f"{src} ({len(sub)} utterances)"
    wav_dir = Path(work_dir) / "loader" / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    lines, spk = {}, {}
    for i, w in enumerate(synthetic_audio(num_utts, seconds)):
        u = f"spk{i % 4}-utt{i:04d}"
        write_wav(wav_dir / f"{u}.wav", w, 16000)
        lines[u], spk[u] = str(wav_dir / f"{u}.wav"), f"spk{i % 4}"
    from specenh.data.kaldi import DataDir

    save_data_dir(DataDir(wav_scp=lines, utt2spk=spk), out)
    return out, f"synthetic ({num_utts} x ~{seconds:.0f} s)"


def time_loader(ds, min_time: float, batch_size: int, crop_frames: int, warmup: int = 1
                ) -> tuple[float, float, float, int]:
    """(audio seconds, wall seconds, CPU seconds of this process, items) of at least ``min_time`` s of
    batches after ``warmup`` batches. On a busy machine the CPU seconds are the worker's own cost."""
    from specenh.train.data import collate_pairs
    from specenh.train.harness import EpochIndexed, StepBatchSampler, bucket

    batches = bucket(ds.frames, batch_size * crop_frames, batch_size)
    sampler = StepBatchSampler(batches, len(ds), seed=0)
    loader = torch.utils.data.DataLoader(EpochIndexed(ds, ds.set_epoch, len(ds)), batch_sampler=sampler,
                                         collate_fn=collate_pairs, num_workers=0)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    audio, n, t0, c0 = 0.0, 0, time.perf_counter(), time.process_time()
    for b in it:  # keys are "<source>:<utt>"; the whole utterance is degraded and featurised, then cropped
        audio += sum(ds.num_samples[k.split(":", 1)[1]] for k in b["keys"]) / ds.sr
        n += len(b["keys"])
        if time.perf_counter() - t0 >= min_time:
            break
    return audio, time.perf_counter() - t0, time.process_time() - c0, n


def bench_loader(threads: int, recipe_dir: str | Path, work_dir: str | Path, *, min_time: float = 3.0,
                 num_utts: int = 64, seconds: float = 4.0, conditions: Sequence[str] | None = None,
                 batch_size: int = 8, crop_frames: int = 256) -> list:
    """Rows of x real time per worker (see the module docstring)."""
    from specenh.bench.core import Row, _Mem
    from specenh.train.online import OnlinePairs, OnlineSpec

    torch.set_num_threads(threads)
    conf_dir = Path(recipe_dir) / "conf" / "degrade"
    if not conf_dir.is_dir():
        conf_dir = Path(__file__).resolve().parents[2] / "egs" / "mini" / "conf" / "degrade"
    conds = [c for c in (conditions or DEFAULT_CONDITIONS) if (conf_dir / f"{c}.yaml").is_file()]
    if not conds:
        raise FileNotFoundError(f"no condition of {list(conditions or DEFAULT_CONDITIONS)} under {conf_dir}")
    data_dir, what = clean_set(recipe_dir, work_dir, num_utts, seconds)
    files = {f"train_{c}": conf_dir / f"{c}.yaml" for c in conds}
    groups: list[tuple[str, list[str], bool]] = [(c, [c], False) for c in conds]
    if len(conds) > 1:
        groups.append(("mix of all but reverb", [c for c in conds if c != "reverb"], True))
        if "reverb" in conds:
            groups.append(("mix of all", list(conds), True))
    rows = []
    for name, cs, mix in groups:
        spec = OnlineSpec(data_dir=data_dir, condition_files=files, seed=0, mix=mix)
        ds = OnlinePairs(spec, [f"train_{c}" for c in cs], max_frames=crop_frames, seed=0)
        with _Mem("cpu") as m:
            audio, wall, cpu, n = time_loader(ds, min_time, batch_size, crop_frames)
        log.info("loader %s: %.1f s of audio in %.2f s wall, %.2f s CPU (%d items)", name, audio, wall, cpu, n)
        rows.append(Row("loader", f"online pairs: {name}", audio / wall, threads, "cpu", batch_size, audio, wall, m.mb,
                        extra={"items": n, "items_per_s": n / wall, "xrt_cpu": audio / max(cpu, 1e-9), "cpu_s": cpu,
                               "audio": what, "crop_frames": crop_frames, "conditions": cs}))
    return rows

