"""Stage 7: resynthesis to waveform and signal metrics of a front-end on one (degraded) set.

For the first ``max_utts`` utterances (sorted ids) of a stage-3 feature dir:

* waveform front-ends (``domain = "wave"``: specsub, wiener, resample, mask) enhance the degraded
  audio (``wav.scp``) directly;
* log-mel front-ends enhance the stored features (``feats.scp``), and the vocoder
  (:func:`specenh.vocoder.logmel_to_wave`; FGLA, 32 iterations by default) turns the result into a
  waveform. Because the vocoder itself costs quality, two more rows are computed with the *same*
  vocoder: ``input_resynth`` (the degraded features, unenhanced) and ``clean_resynth`` (features of
  the clean reference: the vocoder's ceiling). A log-mel front-end is judged against
  ``input_resynth`` (like with like); its gap to ``clean_resynth`` is what enhancement can still gain.

**Reference and level.** ``clean.scp`` gives the clean source of each utterance; the degraded
wave is ``gain * degraded(clean)`` with ``gain`` from ``utt2gain`` (<= 1, anti-clipping; looked
up in the feature dir, then in ``--data-dir``; 1 when absent, with a warning). Every metric is
computed against ``gain * clean``, the clean signal at the level the input carries. PESQ, STOI,
ESTOI and SI-SDR do not depend on the level; SDR and LSD do, which is why the reference is scaled.
A set without ``clean.scp`` (a clean set) is its own reference.

**Reading the numbers.** Griffin-Lim recovers *a* phase consistent with the magnitudes, not the
original one, so waveform-matching metrics (SI-SDR, SDR) of every resynthesised row are near or
below 0 dB whatever the features; compare log-mel systems on PESQ, STOI/ESTOI and LSD, and only
against ``input_resynth`` / ``clean_resynth``. Waveform front-ends keep the noisy phase and all six
metrics apply to them.

Outputs in ``out_dir``: ``metrics.csv`` (the system: utt, pesq, stoi, estoi, si_sdr, sdr, lsd),
``metrics_input.csv`` (the unprocessed degraded audio) and, for log-mel front-ends,
``metrics_input_resynth.csv`` and ``metrics_clean_resynth.csv``; ``summary.json`` (means, missing
counts, paired mean improvements over the unprocessed input; with a Whisper judge, its WERs: see
:func:`resynthesize_set`); ``wav/<utt>.{clean,degraded,enhanced}.wav``
for the first ``num_examples`` utterances; ``spectrogram_<utt>.png`` (clean / degraded / enhanced
log-mel of the first utterance). A finished run leaves ``.done/resynth`` and is skipped on rerun
unless ``overwrite``.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from specenh.data.audio import load_audio, write_wav
from specenh.data.kaldi import read_kv
from specenh.features.io import length_sorted_batches, load_feat, pad_batch, read_feats_scp, read_utt2num_frames
from specenh.features.logmel import FeatureConfig, LogMelExtractor
from specenh.frontends.base import FrontEnd, resolve
from specenh.metrics.signal import METRICS, compute_all, summarize
from specenh.stages.batch_enhancer import run_frontend
from specenh.utils.done import Marker, fingerprint
from specenh.utils.io import atomic_path

log = logging.getLogger(__name__)

CSV_COLUMNS = ("utt",) + METRICS


def _feature_config(feats_dir: Path) -> FeatureConfig:
    from specenh.features.extract import feature_config_from_file

    p = feats_dir / "feats_config.yaml"
    if p.is_file():
        return feature_config_from_file(p)
    log.warning("%s has no feats_config.yaml; assuming the default features", feats_dir)
    return FeatureConfig()


def _lookup(name: str, feats_dir: Path, data_dir: Path | None) -> Path | None:
    for d in (feats_dir, data_dir):
        if d is not None and (d / name).is_file():
            return d / name
    return None


def write_metrics_csv(path: str | Path, rows: Mapping[str, Mapping[str, float]]) -> None:
    """``utt,pesq,stoi,estoi,si_sdr,sdr,lsd`` per utterance (NaN written as an empty cell)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for utt, m in rows.items():
                w.writerow([utt] + ["" if not math.isfinite(m[k]) else f"{m[k]:.6g}" for k in METRICS])


def read_metrics_csv(path: str | Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["utt"]] = {k: (float(row[k]) if row[k] != "" else math.nan) for k in METRICS}
    return out


def paired_delta(system: Mapping[str, Mapping[str, float]], base: Mapping[str, Mapping[str, float]]
                 ) -> dict[str, dict[str, float]]:
    """Mean over utterances of ``system - base`` per metric, on utterances where both are finite."""
    out: dict[str, dict[str, float]] = {}
    for k in METRICS:
        d = [system[u][k] - base[u][k] for u in system if u in base
             and math.isfinite(system[u][k]) and math.isfinite(base[u][k])]
        out[k] = {"mean": float(np.mean(d)) if d else math.nan, "count": len(d)}
    return out


def spectrogram_panel(rows: Sequence[tuple[str, np.ndarray]], path: str | Path, title: str = "") -> None:
    """One PNG with a log-mel image per row: ``rows`` = [(label, feats [D, T]), ...] (shared colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = np.concatenate([r[1].ravel() for r in rows])
    vmax = float(np.percentile(vals, 99.5))
    vmin = vmax - 16.0  # ~70 dB of dynamic range in natural-log power
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.1 * len(rows)), sharex=True, squeeze=False)
    for ax, (label, f) in zip(axes[:, 0], rows):
        im = ax.imshow(f, origin="lower", aspect="auto", interpolation="nearest", vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_ylabel("mel band")
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("frame (10 ms)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.8, label="log mel power (nats)")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _nan_json(obj: Any) -> Any:
    """NaN -> None so the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_json(v) for v in obj]
    return obj


def resynthesize(feats_dir: str | Path, frontend: str | FrontEnd, out_dir: str | Path, **kw: Any) -> dict[str, Any]:
    """Run stage 7 for one (set, front-end); returns the summary (also in ``out_dir/summary.json``).
    Keyword options as in :func:`resynthesize_set`."""
    return resynthesize_set(feats_dir, [frontend], [out_dir], **kw)[0]


def resynthesize_set(feats_dir: str | Path, frontends: Sequence[str | FrontEnd], out_dirs: Sequence[str | Path], *,
                     method: str = "fgla", n_iter: int = 32, num_examples: int = 3, max_utts: int | None = 50,
                     data_dir: str | Path | None = None, batch_size: int = 8, inversion: str = "pinv",
                     degli_model: str | Path | None = None, refiner_model: str | Path | None = None,
                     device: str = "cpu", num_threads: int = 1, overwrite: bool = False,
                     judge_model: str | None = None, judge_compute_type: str = "int8",
                     n_boot: int = 1000, choices: Sequence[Mapping[str, str] | None] | None = None,
                     runtime: str = "pytorch") -> list[dict[str, Any]]:
    """Stage 7 for one set and several front-ends (``out_dirs[k]`` for ``frontends[k]``); returns their
    summaries. The per-set work is done once for all of them: reading the audio, the clean features,
    the metrics of the unprocessed input and the two vocoder references (``input_resynth``,
    ``clean_resynth``), which are the same whatever the front-end. A front-end whose ``out_dir`` has
    finished is skipped (unless ``overwrite``).

    ``judge_model`` (optional, see :mod:`specenh.metrics.judge`): a pretrained Whisper also transcribes
    the unprocessed input, the enhanced audio, the vocoder's ``input_resynth`` / ``clean_resynth`` (log-mel
    front-ends) and the clean audio; WER with ``n_boot`` bootstrap CIs and paired tests go into
    ``summary.json`` (``judge``) and the scoring files into ``<out_dir>/judge/<system>/``. Needs the
    set's ``text`` (feature dir or ``data_dir``).

    ``choices[k]`` (optional): for a front-end with several candidate outputs (an observation-adding grid),
    stage 5's per-utterance choice (its ``choice`` file): the audio and metrics are those of what was decoded.
    ``runtime``: ``onnx`` runs the front-ends' networks in onnxruntime (:mod:`specenh.stages.runtime`).

    Steps: which outputs are still to do (:func:`_pending`), the set's audio and references
    (:func:`_read_set`), then per length-sorted batch the reference systems (:meth:`_SetRun.references`)
    and each front-end (:meth:`_SetRun.enhance`), and finally one summary per front-end (:meth:`_SetRun.finish`)."""
    if len(frontends) != len(out_dirs):
        raise ValueError(f"{len(frontends)} front-ends but {len(out_dirs)} output dirs")
    choices = list(choices) if choices is not None else [None] * len(frontends)
    if len(choices) != len(frontends):
        raise ValueError(f"{len(frontends)} front-ends but {len(choices)} choice maps")
    feats_dir = Path(feats_dir)
    out_dirs = [Path(o) for o in out_dirs]
    options: dict[str, Any] = dict(method=method, n_iter=n_iter, max_utts=max_utts, inversion=inversion,
                                   degli_model=degli_model, refiner_model=refiner_model, num_examples=num_examples)
    if judge_model:
        options.update(judge_model=judge_model, judge_compute_type=judge_compute_type, n_boot=n_boot)
    if runtime != "pytorch":
        options["runtime"] = runtime
    results, stamps = _pending(feats_dir, frontends, out_dirs, choices, options, overwrite)
    todo = [k for k, r in enumerate(results) if r is None]
    if not todo:
        return results  # type: ignore[return-value]
    torch.set_num_threads(num_threads)
    run = _SetRun(feats_dir, _read_set(feats_dir, Path(data_dir) if data_dir else None, max_utts),
                  {k: frontends[k] for k in todo}, {k: out_dirs[k] for k in todo}, {k: choices[k] for k in todo},
                  device=device, num_examples=num_examples, runtime=runtime, num_threads=num_threads,
                  voc_kw=dict(method=method, n_iter=n_iter, inversion=inversion, degli_model=degli_model,
                              refiner_model=refiner_model))
    if judge_model:
        run.open_judge(judge_model, judge_compute_type, num_threads, Path(data_dir) if data_dir else None)
    for batch in length_sorted_batches({u: run.data.n2f[u] for u in run.data.utts}, batch_size):
        b = run.references(batch)
        for k in todo:
            run.enhance(k, b)
    if run.judge is not None:
        j = run.judge
        log.info("%s: Whisper judge transcribed %d utterances (%.0f s of audio) in %.0f s (%.2f s per utterance)",
                 feats_dir, j.count, j.audio_s, j.compute_s, j.compute_s / max(j.count, 1))
    for k in todo:
        results[k] = run.finish(k, stamps[k], n_boot=n_boot)
    return results  # type: ignore[return-value]


def _pending(feats_dir: Path, frontends: Sequence[str | FrontEnd], out_dirs: Sequence[Path],
             choices: Sequence[Mapping[str, str] | None], options: Mapping[str, Any], overwrite: bool
             ) -> tuple[list[dict[str, Any] | None], dict[int, str]]:
    """Each output's fingerprint, and the summaries of those already done (``None``: still to do)."""
    results: list[dict[str, Any] | None] = [None] * len(out_dirs)
    stamps = {k: resynth_fingerprint(feats_dir, frontends[k], **options,
                                     **({"choices": sorted(choices[k].items())} if choices[k] else {}))
              for k in range(len(out_dirs))}
    for k, out_dir in enumerate(out_dirs):
        if (not overwrite and (out_dir / "summary.json").is_file()
                and Marker(out_dir / ".done" / "resynth").is_current(stamps[k], f"{out_dir} resynthesis")):
            log.info("%s: resynthesis already done; skipping", out_dir)
            results[k] = json.loads((out_dir / "summary.json").read_text())
    return results, stamps


@dataclass
class _SetData:
    """The utterances stage 7 measures and where their degraded and clean audio are."""

    utts: list[str]
    n2f: dict[str, int]
    wav_scp: dict[str, str]
    clean_scp: dict[str, str]
    gains: dict[str, float]
    clean_p: Path | None
    gain_p: Path | None
    data_dir: Path | None


def _read_set(feats_dir: Path, data_dir: Path | None, max_utts: int | None) -> _SetData:
    """The first ``max_utts`` sorted ids of ``feats_dir`` with their audio, clean reference and gain."""
    n2f = read_utt2num_frames(feats_dir / "utt2num_frames")
    utts = sorted(n2f)
    if max_utts:
        utts = utts[:max_utts]
    if not utts:
        raise ValueError(f"{feats_dir}: no utterances")
    wav_scp = read_kv(feats_dir / "wav.scp")
    clean_p = _lookup("clean.scp", feats_dir, data_dir)
    if clean_p is None:
        log.warning("%s: no clean.scp; the set is its own reference (a clean set)", feats_dir)
    clean_scp = read_kv(clean_p) if clean_p else wav_scp
    gain_p = _lookup("utt2gain", feats_dir, data_dir)
    if gain_p is None and clean_p is not None:
        log.warning("%s: no utt2gain (pass --data-dir of the degraded data dir); assuming gain 1: SDR and LSD "
                    "are wrong for utterances that were scaled against clipping", feats_dir)
    gains = {u: float(g) for u, g in read_kv(gain_p).items()} if gain_p else {}
    missing = [u for u in utts if u not in wav_scp or u not in clean_scp]
    if missing:
        raise ValueError(f"{feats_dir}: {len(missing)} utterances lack wav.scp/clean.scp entries, e.g. {missing[:3]}")
    return _SetData(utts, n2f, wav_scp, clean_scp, gains, clean_p, gain_p, data_dir)


@dataclass
class _Batch:
    """One length-sorted batch: its audio, clean features and the reference systems' waveforms."""

    utts: list[str]
    clean: list[np.ndarray]
    noisy: list[np.ndarray]
    cfeats: torch.Tensor  # [B, D, T] clean log-mel
    cframes: torch.Tensor  # [B]
    refs: dict[str, list[np.ndarray]]
    x: torch.Tensor | None = None  # [B, T, D] degraded features (log-mel front-ends)
    lens: torch.Tensor | None = None
    nw: torch.Tensor | None = None  # [B, N, 1] degraded audio (waveform front-ends)
    nl: torch.Tensor | None = None
    deg: np.ndarray | None = None  # the panel utterance's degraded log-mel [D, T]


class _SetRun:
    """The state of one set's stage 7 across front-ends: the set-level work done once, per-front-end rows."""

    def __init__(self, feats_dir: Path, data: _SetData, frontends: Mapping[int, str | FrontEnd],
                 out_dirs: Mapping[int, Path], choices: Mapping[int, Mapping[str, str] | None], *, device: str,
                 num_examples: int, voc_kw: Mapping[str, Any], runtime: str = "pytorch", num_threads: int = 1) -> None:
        from specenh.stages.runtime import with_runtime
        from specenh.vocoder import DeGLIDenoiser, MelRefiner

        self.feats_dir, self.data, self.out_dirs, self.choices, self.device = feats_dir, data, out_dirs, choices, device
        self.cfg = _feature_config(feats_dir)
        self.sr = self.cfg.sample_rate
        self.fes: dict[int, FrontEnd] = {}
        self.names: dict[int, str] = {}
        for k, f in frontends.items():
            fe = (resolve(f) if not isinstance(f, FrontEnd) else f).to(device).eval()
            self.fes[k] = with_runtime(fe, runtime, spec=None if isinstance(f, FrontEnd) else f, threads=num_threads)
            self.names[k] = str(f) if not isinstance(f, FrontEnd) else self.fes[k].name
        self.any_logmel = any(fe.domain == "logmel" for fe in self.fes.values())
        self.any_wave = any(fe.domain == "wave" for fe in self.fes.values())
        self.vocoder_opts = {"method": voc_kw["method"], "n_iter": voc_kw["n_iter"], "inversion": voc_kw["inversion"],
                             "degli_model": str(voc_kw["degli_model"] or ""),
                             "refiner_model": str(voc_kw["refiner_model"] or "")}
        self.voc_kw = dict(method=voc_kw["method"], n_iter=voc_kw["n_iter"], inversion=voc_kw["inversion"],
                           refiner=MelRefiner.load(voc_kw["refiner_model"]) if voc_kw["refiner_model"] else None,
                           denoiser=DeGLIDenoiser.load(voc_kw["degli_model"]) if voc_kw["degli_model"] else None)
        self.feats = read_feats_scp(feats_dir / "feats.scp") if self.any_logmel else None
        self.extractor = LogMelExtractor(self.cfg).to(device).eval()
        self.ref_systems = ["input"] + (["input_resynth", "clean_resynth"] if self.any_logmel else [])
        self.ref_rows: dict[str, dict[str, dict[str, float]]] = {s: {} for s in self.ref_systems}
        self.enh_rows: dict[int, dict[str, dict[str, float]]] = {k: {} for k in self.fes}
        self.examples = set(data.utts[:num_examples])
        self.panel_utt = data.utts[0]
        self.t_enh = {k: 0.0 for k in self.fes}
        self.t_voc = self.voc_audio_s = self.audio_s = 0.0
        self.judge: Any = None
        self.judge_refs: dict[str, str] = {}
        self.ref_hyps: dict[str, dict[str, str]] = {s: {} for s in ("input", "clean", "input_resynth", "clean_resynth")}
        self.enh_hyps: dict[int, dict[str, str]] = {k: {} for k in self.fes}
        for d in out_dirs.values():
            (d / "wav").mkdir(parents=True, exist_ok=True)

    def open_judge(self, judge_model: str, compute_type: str, num_threads: int, data_dir: Path | None) -> None:
        """Load the Whisper judge and the set's transcripts (every measured utterance must have one)."""
        from specenh.metrics.judge import WhisperJudge

        text_p = _lookup("text", self.feats_dir, data_dir)
        if text_p is None:
            raise ValueError(f"{self.feats_dir}: the Whisper judge needs the transcripts (a 'text' file here or in "
                             "--data-dir)")
        self.judge_refs = read_kv(text_p, allow_empty_value=True)
        if any(u not in self.judge_refs for u in self.data.utts):
            raise ValueError(f"{text_p}: no transcript for {[u for u in self.data.utts if u not in self.judge_refs][:3]}")
        self.judge = WhisperJudge(judge_model, device=self.device, compute_type=compute_type, num_threads=num_threads)

    def vocode(self, f: torch.Tensor, fl: torch.Tensor) -> list[np.ndarray]:
        """Log-mel [B, D, T] (or [B, T, D] as stored) with lengths [B] -> one waveform per utterance (timed)."""
        from specenh.vocoder import logmel_to_wave

        t0 = time.perf_counter()
        w, wl = logmel_to_wave(f.to(self.device), fl.to(self.device), self.cfg, **self.voc_kw)
        self.t_voc += time.perf_counter() - t0
        self.voc_audio_s += float(wl.sum()) / self.sr
        return [w[i, : int(wl[i])].cpu().numpy() for i in range(w.shape[0])]

    def references(self, batch: list[str]) -> _Batch:
        """Read one batch's audio and compute the reference systems' waveforms and metrics (and transcripts)."""
        d, dev = self.data, self.device
        clean = [load_audio(d.clean_scp[u], self.sr, utt=u)[0] * d.gains.get(u, 1.0) for u in batch]
        noisy = [load_audio(d.wav_scp[u], self.sr, utt=u)[0] for u in batch]
        self.audio_s += sum(len(w) for w in noisy) / self.sr
        cw, cl = pad_batch([torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))[:, None] for w in clean])
        with torch.inference_mode():
            cfeats, cframes = self.extractor(cw[:, 0].to(dev), cl.to(dev))
        b = _Batch(batch, clean, noisy, cfeats, cframes, {"input": noisy})
        if self.any_wave:
            b.nw, b.nl = pad_batch([torch.from_numpy(w)[:, None] for w in noisy])
        if self.panel_utt in batch:
            b.deg = self._degraded_panel(noisy[batch.index(self.panel_utt)])
        if self.any_logmel:
            b.x, b.lens = pad_batch([load_feat(self.feats, u) for u in batch])
            b.refs["input_resynth"] = self.vocode(b.x, b.lens)
            b.refs["clean_resynth"] = self.vocode(cfeats, cframes)
        for s in self.ref_systems:
            for i, u in enumerate(batch):
                self.ref_rows[s][u] = compute_all(clean[i], b.refs[s][i], self.sr, utt=u)
        if self.judge is not None:
            for s, waves in [("clean", clean)] + [(s, b.refs[s]) for s in self.ref_systems]:
                self.ref_hyps[s].update(self.judge.transcribe(zip(batch, waves), self.sr, progress=False))
        return b

    def _degraded_panel(self, noisy: np.ndarray) -> np.ndarray:
        """The panel utterance's degraded log-mel [D, T] (stored features, else the extractor's)."""
        if self.feats is not None:
            return load_feat(self.feats, self.panel_utt).T
        with torch.inference_mode():
            nt = torch.from_numpy(noisy)[None]
            df, dfl = self.extractor(nt, torch.tensor([nt.shape[1]]))
        return df[0, :, : int(dfl[0])].numpy()

    def enhance(self, k: int, b: _Batch) -> None:
        """Front-end ``k`` on one batch: its audio, metrics, transcripts, example files and panel."""
        fe, dev = self.fes[k], self.device
        n2f, feats_dir = self.data.n2f, self.feats_dir
        t0 = time.perf_counter()
        clean_fn = lambda: (b.cfeats, b.cframes)  # noqa: E731  (the clean features, for front-ends that declare them)
        if fe.domain == "wave":
            ew, ewl = run_frontend(fe, b.nw[:, 0].to(dev), b.nl.to(dev), b.utts, feats_dir=feats_dir,
                                   num_frames=n2f, clean=clean_fn, device=dev)
            enhanced = [ew[i, : int(ewl[i])].cpu().numpy() for i in range(len(b.utts))]
            with torch.inference_mode():
                efeats, eframes = self.extractor(ew, ewl)
            self.t_enh[k] += time.perf_counter() - t0
        else:
            efeats, eframes = run_frontend(fe, b.x.to(dev), b.lens.to(dev), b.utts, feats_dir=feats_dir,
                                           num_frames=n2f, clean=clean_fn, device=dev, choices=self.choices[k])
            self.t_enh[k] += time.perf_counter() - t0
            # a pass-through front-end (identity): the enhanced audio is the input's resynthesis
            enhanced = b.refs["input_resynth"] if fe.passthrough else self.vocode(efeats, eframes)
        if self.judge is not None:
            self.enh_hyps[k].update({u: self.ref_hyps["input_resynth"][u] for u in b.utts} if fe.passthrough
                                    else self.judge.transcribe(zip(b.utts, enhanced), self.sr, progress=False))
        for i, u in enumerate(b.utts):
            self.enh_rows[k][u] = compute_all(b.clean[i], enhanced[i], self.sr, utt=u)
            if u in self.examples:
                self._write_example(k, b, i, enhanced[i])
            if u == self.panel_utt:
                nf = int(b.cframes[i])
                panel = [("clean (reference)", b.cfeats[i, :, :nf].cpu().numpy()), ("degraded (input)", b.deg),
                         (f"enhanced: {self.names[k]}" + (" (log-mel output)" if fe.domain == "logmel" else ""),
                          efeats[i, :, : int(eframes[i])].detach().cpu().numpy())]
                spectrogram_panel(panel, self.out_dirs[k] / f"spectrogram_{u}.png",
                                  title=f"{feats_dir.name} / {self.names[k]} / {u}")

    def _write_example(self, k: int, b: _Batch, i: int, enhanced: np.ndarray) -> None:
        """``wav/<utt>.{clean,degraded,enhanced[,input_resynth]}.wav`` of one example utterance."""
        wav, u = self.out_dirs[k] / "wav", b.utts[i]
        write_wav(wav / f"{u}.clean.wav", b.clean[i], self.sr)
        write_wav(wav / f"{u}.degraded.wav", b.noisy[i], self.sr)
        write_wav(wav / f"{u}.enhanced.wav", enhanced, self.sr)
        if self.fes[k].domain == "logmel":
            write_wav(wav / f"{u}.input_resynth.wav", b.refs["input_resynth"][i], self.sr)

    def finish(self, k: int, stamp: str, *, n_boot: int) -> dict[str, Any]:
        """Front-end ``k``'s CSVs, judge scores, ``summary.json`` and done marker; returns the summary."""
        utts, d = self.data.utts, self.data
        judged = None
        if self.judge is not None:
            from specenh.metrics.judge import JUDGED_SYSTEMS, write_judged

            hyps = {"enhanced": self.enh_hyps[k], **self.ref_hyps}
            keep = [s for s in JUDGED_SYSTEMS if hyps[s] and (self.fes[k].domain == "logmel" or "resynth" not in s)]
            judged = write_judged(self.out_dirs[k], self.judge_refs, {s: {u: hyps[s][u] for u in utts} for s in keep},
                                  self.judge.info(), n_boot=n_boot)
        ref_order = {s: {u: self.ref_rows[s][u] for u in utts} for s in self.ref_systems}
        return _write_outputs(
            self.out_dirs[k], self.feats_dir, self.fes[k], self.names[k], utts, {u: self.enh_rows[k][u] for u in utts},
            ref_order, audio_s=self.audio_s, t_enh=self.t_enh[k],
            vocoder_xrt=self.voc_audio_s / max(self.t_voc, 1e-9) if self.t_voc else None,
            vocoder=self.vocoder_opts,
            reference="clean.scp scaled by utt2gain" if d.clean_p else "the set's own audio (no clean.scp)",
            gain_found=d.gain_p is not None, panel_utt=self.panel_utt, stamp=stamp, judged=judged)


def resynth_fingerprint(feats_dir: Path, frontend: str | FrontEnd, **options: Any) -> str:
    """What one front-end's stage-7 output depends on: the set's features and audio, the front-end (a
    checkpoint by size and time) and the vocoder and selection options."""
    spec = frontend if isinstance(frontend, str) else f"<{type(frontend).__name__}:{id(frontend)}>"
    files = [feats_dir / "feats.scp", feats_dir / "wav.scp"]
    files += [Path(str(p)) for p in (spec, options.get("degli_model"), options.get("refiner_model"))
              if p and Path(str(p)).is_file()]
    return fingerprint({"frontend": str(spec), **{k: str(v) for k, v in options.items()}}, inputs=files)


def _write_outputs(out_dir: Path, feats_dir: Path, fe: FrontEnd, fe_name: str, utts: list[str],
                   enhanced: dict[str, dict[str, float]], refs: dict[str, dict[str, dict[str, float]]], *,
                   audio_s: float, t_enh: float, vocoder_xrt: float | None, vocoder: dict[str, str],
                   reference: str, gain_found: bool, panel_utt: str, stamp: str,
                   judged: dict[str, Any] | None = None) -> dict[str, Any]:
    """One front-end's CSVs, ``summary.json`` and done marker (``refs``: the per-set reference rows)."""
    systems = ["input"] + (["input_resynth", "clean_resynth"] if fe.domain == "logmel" else [])
    order = {"enhanced": enhanced, **{s: refs[s] for s in systems}}
    write_metrics_csv(out_dir / "metrics.csv", order["enhanced"])
    for s in systems:
        write_metrics_csv(out_dir / f"metrics_{s}.csv", order[s])
    metrics = {s: summarize(order[s].values()) for s in order}
    summary: dict[str, Any] = {
        "set": feats_dir.name, "feats_dir": str(feats_dir), "frontend": fe_name, "domain": fe.domain,
        "vocoder": vocoder if fe.domain == "logmel" else None,
        "num_utts": len(utts), "audio_s": audio_s,
        "reference": reference,
        "gain_found": gain_found,
        "metrics": metrics,
        "delta_vs_input": paired_delta(order["enhanced"], order["input"]),
        "pesq_missing": {s: metrics[s]["pesq"]["missing"] for s in order},
        "enhance_xrt": audio_s / max(t_enh, 1e-9),
        "vocoder_xrt": vocoder_xrt if fe.domain == "logmel" else None,
        "higher_is_better": {k: k != "lsd" for k in METRICS},
        "panel": f"spectrogram_{panel_utt}.png",
    }
    if fe.domain == "logmel":
        summary["delta_vs_input_resynth"] = paired_delta(order["enhanced"], order["input_resynth"])
    if judged is not None:
        summary["judge"] = judged
        j = judged["systems"]
        log.info("%s: Whisper WER %s", out_dir, ", ".join(f"{s} {100 * v['wer']:.1f}%" for s, v in j.items()))
    (out_dir / "summary.json").write_text(json.dumps(_nan_json(summary), indent=2) + "\n")
    Marker(out_dir / ".done" / "resynth").mark(stamp)
    m, d = summary["metrics"]["enhanced"], summary["delta_vs_input"]
    log.info("%s: %d utts, PESQ %.2f (%+.2f), STOI %.3f (%+.3f), SI-SDR %.2f dB (%+.2f), LSD %.2f dB (%+.2f); "
             "PESQ missing %d", out_dir, len(utts), m["pesq"]["mean"], d["pesq"]["mean"], m["stoi"]["mean"],
             d["stoi"]["mean"], m["si_sdr"]["mean"], d["si_sdr"]["mean"], m["lsd"]["mean"], d["lsd"]["mean"],
             m["pesq"]["missing"])
    return summary


def condition_panel(feats_dir: str | Path, frontends: Sequence[str], out_png: str | Path, *,
                    labels: Sequence[str] | None = None, clean_feats_dir: str | Path | None = None,
                    utt: str | None = None, device: str = "cpu",
                    choices: Sequence[Mapping[str, str] | None] | None = None) -> Path:
    """One spectrogram panel per condition: clean / degraded / the output of each front-end, for one
    utterance (default: the first sorted id) of ``feats_dir``. Front-ends are specs as in stage 5
    (names, checkpoints, inference-variant YAMLs); waveform front-ends are shown through the ASR's
    feature extractor."""
    from specenh.stages.batch_enhancer import BatchEnhancer

    feats_dir = Path(feats_dir)
    labels = list(labels) if labels else [str(f) for f in frontends]
    if len(labels) != len(frontends):
        raise ValueError(f"{len(frontends)} front-ends but {len(labels)} labels")
    cfg = _feature_config(feats_dir)
    n2f = read_utt2num_frames(feats_dir / "utt2num_frames")
    utt = utt or sorted(n2f)[0]
    if utt not in n2f:
        raise ValueError(f"{feats_dir}: no utterance {utt!r}")
    rows: list[tuple[str, np.ndarray]] = []
    if clean_feats_dir is not None:
        rows.append(("clean (reference)", load_feat(read_feats_scp(Path(clean_feats_dir) / "feats.scp"), utt).T))
    rows.append(("degraded (input)", load_feat(read_feats_scp(feats_dir / "feats.scp"), utt).T))
    choices = list(choices) if choices is not None else [None] * len(frontends)
    for spec, label, ch in zip(frontends, labels, choices):
        fe = resolve(spec)
        if fe.passthrough:  # the degraded row already shows it
            continue
        y, yl = BatchEnhancer(feats_dir, fe, cfg, clean_feats_dir=clean_feats_dir, device=device,
                              choices=ch)([utt])
        rows.append((f"{label} ({fe.domain})", y[0, :, : int(yl[0])].cpu().numpy()))
    spectrogram_panel(rows, out_png, title=f"{feats_dir.name} / {utt}")
    log.info("wrote %s (%d rows)", out_png, len(rows))
    return Path(out_png)


__all__ = ["resynthesize", "condition_panel", "write_metrics_csv", "read_metrics_csv", "paired_delta", "spectrogram_panel", "CSV_COLUMNS"]
