"""Speed benchmarks, measured side by side in one process (``specenh bench`` / benchmarks/run.py).

Every figure is x real time (seconds of audio processed per second of wall time) on the same
audio in the same run, with the CPU thread count stated; ratios are against the reference
implementation named in the row. Peak memory is the process's max RSS growth during the item.
"""
from __future__ import annotations

import json
import logging
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass
class Row:
    section: str
    name: str
    xrt: float              # x real time
    threads: int
    device: str
    batch: int
    audio_s: float
    wall_s: float
    peak_rss_mb: float
    ratio_to: str = ""
    ratio: float | None = None
    extra: dict = field(default_factory=dict)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timeit(fn: Callable[[], object], min_time: float, warmup: int = 1) -> float:
    """Mean wall seconds per call over at least ``min_time`` seconds (after warm-up)."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return el / n


def synthetic_audio(num: int, seconds: float, sr: int = 16000, seed: int = 0) -> list[np.ndarray]:
    """Speech-like test signals (harmonic complex with a moving pitch, syllabic envelope, noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(num):
        n = int(sr * seconds * rng.uniform(0.8, 1.2))
        t = np.arange(n) / sr
        f0 = 110 + 40 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t)
        ph = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * ph) / k for k in range(1, 25)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
        out.append((0.1 * x + 0.003 * rng.standard_normal(n)).astype(np.float32))
    return out


def _batch(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(w) for w in waves])
    x = torch.zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy(w)
    return x, lens


def bench_features(waves: list[np.ndarray], threads: int, device: str, batch: int, min_time: float) -> list[Row]:
    """Our extractor vs NeMo's AudioToMelSpectrogramPreprocessor vs librosa.feature.melspectrogram."""
    import librosa
    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor

    from specenh.features.logmel import FeatureConfig, LogMelExtractor

    cfg = FeatureConfig()
    torch.set_num_threads(threads)
    audio_s = sum(len(w) for w in waves) / cfg.sample_rate
    batches = [_batch(waves[i : i + batch]) for i in range(0, len(waves), batch)]
    batches = [(x.to(device), l.to(device)) for x, l in batches]
    ours = LogMelExtractor(cfg).to(device).eval()
    kw = cfg.to_nemo()
    kw.pop("_target_")
    nemo = AudioToMelSpectrogramPreprocessor(**kw).to(device).eval()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def run_ours():
        with torch.inference_mode():
            for x, l in batches:
                ours(x, l)
        sync()

    def run_nemo():
        with torch.inference_mode():
            for x, l in batches:
                nemo(input_signal=x, length=l)
        sync()

    def run_librosa():
        for w in waves:
            m = librosa.feature.melspectrogram(y=w, sr=16000, n_fft=512, hop_length=160, win_length=400,
                                               window="hann", n_mels=80, power=2.0, norm="slaney", htk=False,
                                               pad_mode="constant")
            np.log(m + 2.0 ** -24)

    rows = []
    results = {}
    for name, fn in (("specenh LogMelExtractor", run_ours), ("NeMo AudioToMelSpectrogramPreprocessor", run_nemo),
                     ("librosa melspectrogram (per utterance)", run_librosa)):
        if name.startswith("librosa") and device != "cpu":
            continue
        r0 = _rss_mb()
        sec = timeit(fn, min_time)
        results[name] = audio_s / sec
        rows.append(Row("features", name, audio_s / sec, threads, device, batch if "librosa" not in name else 1,
                        audio_s, sec, max(0.0, _rss_mb() - r0)))
    ref = results["NeMo AudioToMelSpectrogramPreprocessor"]
    for r in rows:
        r.ratio_to, r.ratio = "NeMo", r.xrt / ref
    return rows


def format_table(rows: list[Row]) -> str:
    head = "| section | item | device | threads | batch | x real time | ratio | peak RSS growth (MB) |\n|---|---|---|---|---|---|---|---|"
    lines = [head]
    for r in rows:
        ratio = f"{r.ratio:.2f} vs {r.ratio_to}" if r.ratio is not None else ""
        lines.append(f"| {r.section} | {r.name} | {r.device} | {r.threads} | {r.batch} | {r.xrt:,.0f} | {ratio} | {r.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def machine_info(device: str) -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "cpu_count": __import__("os").cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


SECTIONS = {"features": bench_features}


def run(sections: list[str], *, device: str = "cpu", threads: list[int] | None = None, quick: bool = False,
        out_json: str | Path | None = None, num_utts: int | None = None, seconds: float = 4.0) -> list[Row]:
    threads = threads or [1, 2]
    num_utts = num_utts or (16 if quick else 64)
    min_time = 0.5 if quick else 3.0
    waves = synthetic_audio(num_utts, seconds)
    rows: list[Row] = []
    for sec in sections:
        if sec not in SECTIONS:
            raise ValueError(f"unknown benchmark section {sec!r}; known: {sorted(SECTIONS)}")
        for th in threads:
            rows += SECTIONS[sec](waves, th, device, 16, min_time)
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps({"machine": machine_info(device), "rows": [asdict(r) for r in rows]},
                                             indent=2) + "\n")
    return rows
