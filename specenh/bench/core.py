"""Speed benchmarks, measured side by side in one process (``specenh bench`` / benchmarks/run.py).

Every figure is x real time (seconds of audio processed per second of wall time) on the same
audio in the same run, with the CPU thread count stated; ratios are against the reference
implementation named in the row. Peak memory is the process's max RSS growth during the item (CPU;
only the first item to touch that memory shows it) or the peak CUDA allocation (GPU).
"""
from __future__ import annotations

import json
import logging
import os
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


def synthetic_audio(num: int, seconds: float, sr: int = 16000, seed: int = 0,
                    spread: tuple[float, float] = (0.8, 1.2)) -> list[np.ndarray]:
    """Speech-like test signals (harmonic complex with a moving pitch, syllabic envelope, noise), each
    ``seconds`` times a factor drawn uniformly from ``spread``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(num):
        n = int(sr * seconds * rng.uniform(*spread))
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _current_rss_mb() -> float:
    """Resident memory of this process now (Linux /proc; elsewhere the lifetime peak, a coarser bound)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20
    except OSError:
        return _rss_mb()


class _Mem:
    """Peak memory of one item, in MB: on CPU the peak resident memory above the item's start, sampled
    every 2 ms by a thread (the lifetime ru_maxrss cannot see a peak below an earlier item's); memory the
    allocator already holds from earlier items is reused without new pages and so is not counted. On GPU
    the peak CUDA allocation."""

    def __init__(self, device: str, interval_s: float = 0.002):
        self.device = device
        self.interval_s = interval_s
        self.mb = 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _current_rss_mb())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "_Mem":
        import threading

        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        self.r0 = self._peak = _current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.device.startswith("cuda"):
            self.mb = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            self.mb = max(0.0, max(self._peak, _current_rss_mb()) - self.r0)


def _logmel(waves: list[np.ndarray], device: str, cfg=None) -> list[torch.Tensor]:
    """Unnormalised log-mel features [D, T] of each wave (our extractor; ``cfg``: a frozen ASR's feature config,
    default NeMo's)."""
    from specenh.features.logmel import FeatureConfig, LogMelExtractor

    ext = LogMelExtractor(cfg or FeatureConfig()).to(device).eval()
    out = []
    with torch.inference_mode():
        for w in waves:
            y, yl = ext(torch.from_numpy(w)[None].to(device), torch.tensor([len(w)], device=device))
            out.append(y[0, :, : int(yl[0])].clone())
    return out


def _time_over_batches(fn: Callable, inputs: list[tuple[torch.Tensor, torch.Tensor]], device: str,
                       min_time: float) -> tuple[float, float]:
    """(seconds per pass of ``fn(x, lengths)`` over all ``inputs``, peak memory MB)."""
    def one_pass():
        for x, xl in inputs:
            fn(x, xl)
        _sync(device)

    with _Mem(device) as m:
        sec = timeit(one_pass, min_time)
    return sec, m.mb


def _feat_batches(feats: list[torch.Tensor], batch: int, max_frames: int | None = None
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Length-sorted batches of at most ``batch`` utterances (and ``max_frames`` padded frames: bucketed)."""
    from specenh.features.io import length_sorted_batches, pad_batch

    out = []
    lengths = {str(i): int(f.shape[-1]) for i, f in enumerate(feats)}
    for b in length_sorted_batches(lengths, batch, max_frames):
        x, xl = pad_batch([feats[int(j)].T for j in b])
        out.append((x.to(feats[0].device), xl.to(feats[0].device)))
    return out


def default_frontend_names() -> list[str]:
    """Registered front-ends the benchmark times by default: all but identity and oracle (no work) and
    private names starting with ``_`` (helpers that tests register)."""
    from specenh.frontends.base import REGISTRY, _import_all

    _import_all()
    return [n for n in sorted(REGISTRY)
            if REGISTRY[n].standalone and not REGISTRY[n].needs_clean and not REGISTRY[n].passthrough
            and not n.startswith("_")]


def _onnx_session(fe, label: str, threads: int, work_dir: str | Path) -> tuple[object, float] | None:
    """Export a front-end to ``work_dir/onnx/`` and open an onnxruntime CPU session with
    ``threads`` intra-op threads: (session, export seconds), or None (logged) where it cannot be exported."""
    import re

    from specenh.frontends.export import export, require_packages, session

    require_packages()
    path = Path(work_dir) / "onnx" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") + ".onnx")
    try:
        res = export(fe, path, check=False)
    except Exception as e:  # noqa: BLE001 - one front-end that does not export must not end the benchmark
        log.warning("onnx: %s not exported (%s: %s)", label, type(e).__name__, str(e).splitlines()[0][:200])
        return None
    return session(path, threads), res.seconds


def _time_onnx(sess, inputs: list[tuple[torch.Tensor, torch.Tensor]], min_time: float) -> tuple[float, float]:
    """(seconds per pass of the onnxruntime session over all ``inputs``, peak memory MB); inputs as
    numpy arrays prepared before timing (zero-copy views of the same tensors PyTorch gets)."""
    from specenh.frontends.export import OUTPUT

    names = [i.name for i in sess.get_inputs()]
    feeds = [{names[0]: x.cpu().numpy(), names[1]: xl.cpu().numpy().astype(np.int64)} for x, xl in inputs]

    def one_pass():
        for f in feeds:
            sess.run([OUTPUT], f)

    with _Mem("cpu") as m:
        sec = timeit(one_pass, min_time)
    return sec, m.mb


def bench_frontends(waves: list[np.ndarray], threads: int, device: str, batch: int, min_time: float,
                    specs: list[str] | None = None, batches: tuple[int, ...] = (1, 32), onnx: bool = False,
                    work_dir: str | Path = "exp/bench", batch_frames: int = 0) -> list[Row]:
    """Inference of each registered front-end at its default size (and of any checkpoint or name in
    ``specs``), batch 1 and batch 32: x real time of the front-end alone (its input already in memory).
    ``batch_frames``: also length-bucketed batches of at most ``batch_frames`` padded 10-ms frames (and the
    largest of ``batches`` utterances), the way ``specenh decode --batch-frames`` batches, with the ratio to
    batch 1.

    ``onnx``: also export each exportable front-end (:mod:`specenh.frontends.export`) and time onnxruntime
    (CPU, the same thread count) on the same batches, in a row next to PyTorch's with the ratio
    onnxruntime / PyTorch; the export time is in the row's ``extra``."""
    from specenh.frontends.base import REGISTRY, _import_all, resolve

    _import_all()
    torch.set_num_threads(threads)
    names = specs or default_frontend_names()
    audio_s = sum(len(w) for w in waves) / 16000
    feats = _logmel(waves, device)
    wave_t = [torch.from_numpy(w).to(device) for w in waves]
    rows = []
    for spec in names:
        fe = resolve(spec).to(device).eval()
        label = f"{fe.name} ({Path(spec).name})" if spec not in REGISTRY else f"{fe.name} (default size)"
        if fe.obs_alpha is not None and len(fe.obs_alpha) > 1:  # a grid needs the ASR to choose: time the network
            fe.set_observation_adding(None)
            label += " [network only, no alpha grid]"
        n_params = sum(p.numel() for p in fe.parameters())
        ort = None
        if onnx:
            if device != "cpu":
                log.warning("onnx: onnxruntime is timed on the CPU only (--device cpu)")
            else:
                ort = _onnx_session(fe, label, threads, work_dir)
        first = None
        for b, frames in [(b, None) for b in batches] + ([(max(batches), batch_frames)] if batch_frames else []):
            if fe.domain == "logmel":
                inputs = _feat_batches(feats, b, frames)
            else:
                from specenh.features.io import length_sorted_batches, pad_batch

                inputs = []
                lengths = {str(i): len(w) // 160 for i, w in enumerate(wave_t)}
                for idx in length_sorted_batches(lengths, b, frames):
                    x, xl = pad_batch([wave_t[int(i)][:, None] for i in idx])
                    inputs.append((x[:, 0, :].to(device), xl.to(device)))

            sec, mb = _time_over_batches(fe.enhance, inputs, device, min_time)
            name = label + (f" [bucketed, <= {frames} frames]" if frames else "")
            row = Row("frontends", name, audio_s / sec, threads, device, b, audio_s, sec, mb,
                      extra={"params": n_params, "domain": fe.domain, "batches": len(inputs),
                             **({"batch_frames": frames} if frames else {})})
            if b == 1 and not frames:
                first = row
            elif first is not None:
                row.ratio_to, row.ratio = "batch 1", first.wall_s / sec  # > 1: faster than one at a time
            rows.append(row)
            log.info("front-end %s batch %d: %.0fx real time", name, b, audio_s / sec)
            if ort is not None:
                osec, omb = _time_onnx(ort[0], inputs, min_time)
                rows.append(Row("frontends", f"{name} [onnxruntime]", audio_s / osec, threads, "cpu", b, audio_s,
                                osec, omb, ratio_to="PyTorch", ratio=sec / osec,
                                extra={"params": n_params, "domain": fe.domain, "export_s": ort[1]}))
                log.info("front-end %s batch %d, onnxruntime: %.0fx real time (%.2f x PyTorch)", label, b,
                         audio_s / osec, sec / osec)
    return rows


def tiny_asr(work_dir: str | Path, config: str | Path | None = None, seed: int = 0) -> Path:
    """A randomly initialised reference Conformer-CTC (``conf/asr/conformer_ctc_mini.yaml``, tokenizer
    from the mini corpus's sentence generator) saved as ``.nemo``: the same compute as the trained one."""
    from specenh.asr.train import build_model, train_tokenizer
    from specenh.data.synthetic import generate_sentences
    from specenh.utils.config import load_config

    work_dir = Path(work_dir)
    out = work_dir / "asr_random.nemo"
    if out.is_file():
        return out
    config = Path(config) if config else Path(__file__).resolve().parents[2] / "conf/asr/conformer_ctc_mini.yaml"
    cfg = load_config(config)
    sents = generate_sentences(seed, {"train": 600})["train"]
    texts = [s.text for s in sents]
    tok = train_tokenizer(texts, work_dir / "tokenizer", vocab_size=int(cfg["tokenizer"]["vocab_size"]),
                          model_type=str(cfg["tokenizer"]["model_type"]))
    torch.manual_seed(seed)
    build_model(cfg["model"], tok).save_to(str(out))
    return out


def bench_asr(waves: list[np.ndarray], threads: int, device: str, batch: int, min_time: float,
              asr_model: str | Path | None = None, work_dir: str | Path = "exp/bench") -> list[Row]:
    """Frozen-ASR decoding from features (normalisation + encoder + greedy CTC/RNNT): x real time."""
    from specenh.asr.base import load_asr

    torch.set_num_threads(threads)
    spec = str(asr_model) if asr_model else str(tiny_asr(work_dir))
    asr = load_asr(spec, device=device)
    label = f"FrozenASR.decode ({Path(spec).name if not asr_model else spec}, " \
            f"{sum(p.numel() for p in asr.model.parameters()) / 1e6:.1f} M)"
    audio_s = sum(len(w) for w in waves) / 16000
    inputs = _feat_batches(_logmel(waves, device, asr.feat_config), 32)

    sec, mb = _time_over_batches(asr.decode, inputs, device, min_time)
    return [Row("asr", label, audio_s / sec, threads, device, 32, audio_s, sec, mb)]


def bench_stage5(recipe_dir: str | Path, threads: int, device: str, frontends: list[str] | None = None,
                 max_utts: int | None = None, test_set: str = "test", condition: str = "noise_5db",
                 asr_model: str | Path | None = None, onnx: bool = False) -> list[Row]:
    """The whole stage-5 path on a recipe's test set: read features -> enhance -> decode -> score,
    x real time, wall clock from the first read to the score (the ASR and front-end loads excluded).
    ``onnx``: each front-end with a network also under ``--runtime onnx`` (:mod:`specenh.stages.runtime`; the
    graph exported beforehand, cached), in a row next to PyTorch's with the ratio and both WERs."""
    from specenh.asr.base import load_asr

    rd = Path(recipe_dir)
    fdir, cdir = rd / "dump/feats" / f"{test_set}_{condition}", rd / "dump/feats" / test_set
    asr_path = Path(asr_model) if asr_model else rd / "exp/asr/model.nemo"
    if not (fdir / "feats.scp").is_file() or (asr_model is None and not asr_path.is_file()):
        log.warning("stage5 benchmark skipped: %s or %s missing (run the recipe's stages 1-3 first)",
                    fdir / "feats.scp", asr_path)
        return []
    torch.set_num_threads(threads)  # a given --asr-model may be a file or a name (whisper:...): load_asr tells
    asr = load_asr(str(asr_path.resolve()) if asr_path.is_file() else str(asr_model), device=device)
    specs = frontends or ["identity"] + [str(p.resolve()) for p in sorted((rd / "exp").glob("frontend_*/model.pt"))]
    cwd = os.getcwd()
    os.chdir(rd)  # scp files hold paths relative to the recipe directory (Kaldi convention)
    try:
        return _stage5_rows(asr, specs, fdir.relative_to(rd), cdir.relative_to(rd), threads, device, max_utts,
                            runtimes=("pytorch", "onnx") if onnx else ("pytorch",))
    finally:
        os.chdir(cwd)


def _stage5_rows(asr, specs: list[str], fdir: Path, cdir: Path, threads: int, device: str,
                 max_utts: int | None, runtimes: tuple[str, ...] = ("pytorch",)) -> list[Row]:
    from specenh.data.kaldi import read_kv
    from specenh.stages.decode import decode_utts
    from specenh.features.io import read_utt2num_frames
    from specenh.frontends.base import resolve
    from specenh.metrics.wer import score

    from specenh.frontends.spec import member_label

    utts = sorted(read_utt2num_frames(fdir / "utt2num_frames"))[: max_utts or None]
    refs = read_kv(fdir / "text", allow_empty_value=True)
    rows: list[Row] = []
    from specenh.stages.runtime import OnnxFrontEnd, with_runtime

    for spec in specs:
        torch_row = None
        for runtime in runtimes:
            fe = with_runtime(resolve(spec), runtime, spec=spec, threads=threads)  # export before the clock
            if runtime != "pytorch" and not any(isinstance(m, OnnxFrontEnd) for _, m in fe.members()):
                continue  # nothing of it runs in onnxruntime
            cands: dict[str, dict] = {}
            with _Mem(device) as m:
                t0 = time.perf_counter()
                hyps, timing = decode_utts(fdir, fe, asr, utts, batch_size=32, clean_feats_dir=cdir,
                                           device=device, candidates=cands)
                res = score({u: refs[u] for u in utts}, hyps, n_boot=0)
                sec = time.perf_counter() - t0
            k = len(next(iter(cands.values()))["labels"]) if cands else 1  # outputs decoded per utterance
            name = (f"stage 5: {fdir.name} -> {member_label(spec)}"
                    + (f" ({k} candidates, each decoded)" if k > 1 else "") + " -> score"
                    + (" [front-end in onnxruntime]" if runtime != "pytorch" else ""))
            row = Row("stage5", name, timing["audio_s"] / sec, threads, device, 32, timing["audio_s"], sec, m.mb,
                      extra={"utts": len(utts), "wer": res.wer, "candidates": k, "runtime": runtime,
                             "enhance_s": timing["enhance_s"], "decode_s": timing["decode_s"]})
            if runtime != "pytorch" and torch_row is not None:
                row.ratio_to, row.ratio = "PyTorch", row.xrt / torch_row.xrt  # > 1: onnxruntime is faster
                row.extra["wer_pytorch"] = torch_row.extra["wer"]
            elif rows and rows[0].extra.get("candidates") == 1 and member_label(specs[0]) == "identity":
                row.ratio_to, row.ratio = "identity", row.xrt / rows[0].xrt  # < 1: the cost of the front-end
            if runtime == "pytorch":
                torch_row = row
            rows.append(row)
    return rows


def bench_train(waves: list[np.ndarray], threads: int, device: str, config: str | Path | None = None,
                steps: int = 20, warmup: int = 3, asr_model: str | Path | None = None,
                work_dir: str | Path = "exp/bench") -> list[Row]:
    """Training throughput of the reference enhancer (one D step + one G step per batch, losses as
    configured): steps/s and seconds of (cropped) audio per second, on batches cut from the audio."""
    import lightning.pytorch as pl

    from specenh.asr.base import load_asr
    from specenh.train import FrontendData
    from specenh.train.gan import StyleGANModule, needs_asr, resolve_config
    from specenh.train.data import collate_pairs
    from specenh.utils.config import load_config

    torch.set_num_threads(threads)
    root = Path(__file__).resolve().parents[2]
    config = Path(config) if config else root / "egs/mini/conf/frontend/stylegan.yaml"
    raw = dict(load_config(config))
    raw.pop("inference", None)  # an inference default (observation adding) does not change training
    cfg = resolve_config(raw)
    tc = cfg["train"]
    asr = None
    if needs_asr(cfg):
        asr = load_asr(str(asr_model) if asr_model else str(tiny_asr(work_dir)), device=device)
    module = StyleGANModule(cfg, FrontendData([], [], [], []), asr, warmup + steps)
    feats = [f.T.cpu().numpy() for f in _logmel(waves, "cpu")]
    crop, bsz = int(tc["crop_frames"]), int(tc["batch_size"])
    items = [(f[:crop], f[:crop], f"u{i}") for i, f in enumerate(feats)]
    batches = [collate_pairs(items[i : i + bsz]) for i in range(0, len(items) - bsz + 1, bsz)] or [collate_pairs(items)]
    batches = [batches[i % len(batches)] for i in range(warmup + steps)]
    frames = [int(b["x_len"].sum()) for b in batches]

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, idx):
            if idx == warmup:
                _sync(device)
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, idx):
            if idx == warmup + steps - 1:
                _sync(device)
                self.sec = time.perf_counter() - self.t0

    clock = Clock()
    precision = "bf16-mixed" if device.startswith("cuda") else "32-true"
    trainer = pl.Trainer(accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, max_steps=2 * len(batches),
                         max_epochs=1, precision=precision, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, callbacks=[clock])
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    with _Mem(device) as m:
        trainer.fit(module, train_dataloaders=loader)
    audio_s = sum(frames[warmup:]) / 100.0
    n_params = sum(p.numel() for p in module.enhancer.parameters())
    return [Row("train", f"stylegan training ({config.name}, G {n_params / 1e6:.2f} M, batch {bsz} x {crop} frames, "
                f"{precision})", audio_s / clock.sec, threads, device, bsz, audio_s, clock.sec, m.mb,
                extra={"steps_per_s": steps / clock.sec})]


def bench_vocoder(waves: list[np.ndarray], threads: int, device: str, batch: int, min_time: float,
                  n_iter: int = 32) -> list[Row]:
    """GLA and FGLA (ours, batched torch) vs ``librosa.griffinlim`` per utterance, same iterations and
    framing (25 ms Hann / 10 ms hop / 512 FFT), from the clean magnitude: x real time."""
    import librosa
    import scipy.signal

    from specenh.features.logmel import FeatureConfig
    from specenh.vocoder.phase import fast_griffin_lim, griffin_lim

    torch.set_num_threads(threads)
    cfg = FeatureConfig()
    win = scipy.signal.get_window("hann", 400, fftbins=False)
    kw = dict(n_fft=512, hop_length=160, win_length=400, window=win, center=True)
    mags = [np.abs(librosa.stft(w, pad_mode="constant", **kw)).astype(np.float32) for w in waves]
    audio_s = sum(len(w) for w in waves) / 16000
    order = sorted(range(len(mags)), key=lambda i: mags[i].shape[1])
    groups = []
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        t = max(mags[j].shape[1] for j in idx)
        m = torch.zeros(len(idx), mags[0].shape[0], t)
        for k, j in enumerate(idx):
            m[k, :, : mags[j].shape[1]] = torch.from_numpy(mags[j])
        groups.append((m.to(device), torch.tensor([mags[j].shape[1] for j in idx], device=device)))

    def ours(fn, **extra):
        def run():
            for m, fr in groups:
                fn(m, n_iter, cfg, frames=fr, **extra)
            _sync(device)
        return run

    def run_librosa():
        for m in mags:
            librosa.griffinlim(m, n_iter=n_iter, momentum=0.99, init=None, pad_mode="constant", **kw)

    rows, ref = [], None
    for name, fn, b in (("librosa.griffinlim (FGLA 0.99, per utterance)", run_librosa, 1),
                        ("specenh griffin_lim (GLA)", ours(griffin_lim), batch),
                        ("specenh fast_griffin_lim (FGLA 0.99)", ours(fast_griffin_lim, momentum=0.99), batch)):
        if name.startswith("librosa") and device != "cpu":
            continue
        with _Mem(device) as m:
            sec = timeit(run_librosa if fn is run_librosa else fn, min_time)
        rows.append(Row("vocoder", f"{name}, {n_iter} iterations", audio_s / sec, threads, device, b, audio_s,
                        sec, m.mb))
        if name.startswith("librosa"):
            ref = audio_s / sec
    if ref:
        for r in rows:
            r.ratio_to, r.ratio = "librosa", r.xrt / ref
    return rows


def format_table(rows: list[Row]) -> str:
    head = "| section | item | device | threads | batch | x real time | ratio | peak memory (MB) |\n|---|---|---|---|---|---|---|---|"
    lines = [head]
    for r in rows:
        ratio = f"{r.ratio:.2f} vs {r.ratio_to}" if r.ratio is not None else ""
        extra = ""
        if "steps_per_s" in r.extra:
            extra = f" ({r.extra['steps_per_s']:.2f} steps/s)"
        if "items_per_s" in r.extra:
            extra = f" ({r.extra['items_per_s']:.1f} items/s; {r.extra['xrt_cpu']:,.0f} per CPU second)"
        lines.append(f"| {r.section} | {r.name} | {r.device} | {r.threads} | {r.batch} | {r.xrt:,.0f}{extra} | "
                     f"{ratio} | {r.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def machine_info(device: str) -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "cpu_count": __import__("os").cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


SECTIONS = ("features", "frontends", "asr", "stage5", "train", "vocoder", "loader")


def run(sections: list[str], *, device: str = "cpu", threads: list[int] | None = None, quick: bool = False,
        out_json: str | Path | None = None, num_utts: int | None = None, seconds: float = 4.0,
        frontends: list[str] | None = None, asr_model: str | None = None, recipe_dir: str | Path = "egs/mini",
        train_config: str | None = None, work_dir: str | Path = "exp/bench", onnx: bool = False,
        batch_frames: int = 0, varied_lengths: bool = False, condition: str = "noise_5db",
        max_utts: int | None = None) -> list[Row]:
    """Run the named sections for each thread count; ``quick``: few utterances, short timings, batch
    sizes and steps cut (a smoke test, not figures to quote). ``onnx``: the frontends section also
    times each exportable front-end exported to ONNX in onnxruntime (:func:`bench_frontends`)."""
    threads = threads or ([2] if quick else [1, 2])
    if device.startswith("cuda"):
        threads = threads[-1:]
    num_utts = num_utts or (8 if quick else 64)
    min_time = 0.2 if quick else 3.0
    waves = synthetic_audio(num_utts, seconds, spread=(0.25, 3.0) if varied_lengths else (0.8, 1.2))
    rows: list[Row] = []
    for sec in sections:
        if sec not in SECTIONS:
            raise ValueError(f"unknown benchmark section {sec!r}; known: {list(SECTIONS)}")
    for sec in sections:
        for th in threads:
            log.info("benchmark section %s, %d thread(s), %s", sec, th, device)
            if sec == "features":
                rows += bench_features(waves, th, device, 16, min_time)
            elif sec == "frontends":
                rows += bench_frontends(waves, th, device, 32, min_time, frontends,
                                        batches=(1, 8) if quick else (1, 32), onnx=onnx, work_dir=work_dir,
                                        batch_frames=batch_frames)
            elif sec == "asr":
                rows += bench_asr(waves, th, device, 32, min_time, asr_model, work_dir)
            elif sec == "stage5":
                rows += bench_stage5(recipe_dir, th, device, frontends=frontends,
                                     max_utts=20 if quick else max_utts, condition=condition, asr_model=asr_model,
                                     onnx=onnx)
            elif sec == "train":
                rows += bench_train(waves if not quick else waves * 2, th, device, train_config,
                                    steps=3 if quick else 20, warmup=1 if quick else 3, asr_model=asr_model,
                                    work_dir=work_dir)
            elif sec == "vocoder":
                rows += bench_vocoder(waves, th, device, 16, min_time, n_iter=8 if quick else 32)
            elif sec == "loader":  # CPU workers: the online training data (specenh.bench.loader)
                from specenh.bench.loader import bench_loader

                rows += bench_loader(th, recipe_dir, work_dir, min_time=min_time, num_utts=num_utts,
                                     seconds=seconds, conditions=("noise_5db", "reverb") if quick else None,
                                     batch_size=4 if quick else 8, crop_frames=64 if quick else 256)
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps({"machine": machine_info(device), "quick": quick,
                                              "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    return rows
