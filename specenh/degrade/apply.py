"""Stage 2: degrade every utterance of a Kaldi data dir under one condition.

Work is split Kaldi-style: job ``j`` of ``nj`` handles the ``split_for_job`` chunk of the sorted
utterance ids and writes

* ``<wav_dir>/<utt>.wav`` (16-bit PCM at the condition's rate; utterance ids unchanged),
* ``<wav_dir>/<utt>.<aux>.npy`` for side outputs (``holes_mask``: bool [F, T]),
* ``<out_dir>/.degrade/nj<nj>.job<j>/`` with partial ``wav.scp``, ``utt2dur``, ``clean.scp``,
  ``utt2gain``, ``<aux>.scp``, the job's ``meta.yaml`` and a ``.done`` marker last.

:func:`merge_jobs` (run automatically when ``nj == 1``) then writes ``<out_dir>`` as a full data dir:
``wav.scp text utt2spk spk2utt utt2dur clean.scp utt2gain utt2cond [holes_mask.scp]`` and
``condition.yaml`` (the resolved condition plus seed / split / source as ``provenance``).

Every output depends only on (seed, condition, utterance id, source data dir), so any ``nj`` gives
the same bytes, a killed job rerun gives the same bytes, and a finished job (``.done`` with equal
``meta.yaml``) is skipped. A job whose ``meta.yaml`` differs (other condition, seed, ...) is redone.

``clean.scp`` maps each utterance to its clean source audio: the source dir's own ``clean.scp``
entry when it has one (degrading an already degraded dir), else its ``wav.scp`` entry.
``utt2gain`` is the factor (<= 1) applied to avoid clipping in the 16-bit output; 1.000000 for most
utterances. When it is below 1 the degraded wave is ``gain * degraded(clean)``.

Bad input is refused, naming the utterance: the source dir must pass ``validate_data_dir`` (text
optional, order not checked), and silent, truncated or unreadable audio stops the job. While a job
runs it holds ``<out_dir>/.specenh.lock`` (:mod:`specenh.utils.lock`): jobs of another run (other
seed, condition, ``nj``...) or a second worker for the same job refuse to start, naming the PIDs.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import yaml

from specenh.data.audio import load_audio, write_wav
from specenh.data.kaldi import DataDir, DataDirError, load_data_dir, read_kv, save_data_dir, write_kv
from specenh.data.validate import validate_data_dir
from specenh.degrade.condition import Condition, load_condition
from specenh.degrade.registry import check_split
from specenh.utils.done import Marker, fingerprint
from specenh.utils.io import atomic_path, split_for_job
from specenh.utils.lock import EXCLUSIVE, output_lock, run_key
from specenh.utils.seed import rng_for

log = logging.getLogger(__name__)

PEAK_LIMIT = 1.0 - 2.0 ** -15  # largest value representable in 16-bit PCM
PEAK_TARGET = 0.99
GAIN_FORMAT = "{:.6f}"  # how utt2gain records the anti-clipping gain (what training on stage 2's outputs reads)
JOBS_DIR = ".degrade"
DONE = ".done"


def _job_dir(out_dir: Path, nj: int, job: int) -> Path:
    return out_dir / JOBS_DIR / f"nj{nj}.job{job}"


def _yaml_dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=None, allow_unicode=True)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)


def _clean_path(data: DataDir, utt: str) -> str:
    clean = data.extra.get("clean.scp", {})
    return clean.get(utt, data.wav_scp[utt])


def _check_source(src: Path, data: DataDir) -> None:
    """Refuse a source dir later stages could not use (files out of sync, pipes, segments...)."""
    validate_data_dir(src, require_text=False, check_sorted=False)
    if (src / "segments").is_file():
        raise DataDirError(f"{src}/segments: data dirs with segments are not supported by stage 2 "
                           "(extract the segments to wav files first)")
    for utt, path in data.wav_scp.items():
        if path.rstrip().endswith("|"):
            raise DataDirError(f"{src}/wav.scp: utterance {utt!r} is a pipe command ({path!r}); "
                               "stage 2 needs plain audio file paths")
    missing = sorted(set(data.wav_scp) - set(data.utt2spk))
    if missing:
        raise DataDirError(f"{src}/utt2spk: no speaker for {len(missing)} utterances, e.g. {missing[0]!r}")


def degrade_one(cond: Condition, utt: str, path: str, *, seed: int, split: str,
                pool: Sequence[tuple[str, str]], rng: np.random.Generator | None = None, verbose: bool = True
                ) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """Degrade one utterance: (float32 [N] wave scaled to fit 16-bit PCM, aux arrays, gain <= 1).

    ``rng``: the utterance's generator; stage 2's is ``rng_for(seed, condition.name, utt)`` (the
    default), the online training data (:mod:`specenh.train.online`) passes its own for later epochs
    (and ``verbose=False``: no log line per scaled utterance, every epoch).
    Raises AudioError naming the file and utterance on bad input (also silent or truncated audio: a
    silent "noisy" version would be trained and scored as if it were speech).
    """
    wave, sr = load_audio(path, target_sr=cond.sample_rate, utt=utt, allow_silent=False)
    if rng is None:
        rng = rng_for(seed, cond.name, utt)
    res = cond.apply(wave, sr, rng, split=split, utt_id=utt, pool=pool)
    out = res.wave
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    gain = 1.0
    if peak > PEAK_LIMIT:
        gain = PEAK_TARGET / peak
        out = (out.astype(np.float64) * gain).astype(np.float32)
        log.log(logging.INFO if verbose else logging.DEBUG, "utterance %s: peak %.3f would clip in 16-bit PCM; "
                "scaled by %.4f (%.1f dB)", utt, peak, gain, 20 * np.log10(gain))
    return out, res.aux, gain


def degrade_data_dir(src_dir: str | Path, condition_yaml: str | Path, out_dir: str | Path,
                     wav_dir: str | Path, *, split: str = "test", seed: int = 0, nj: int = 1, job: int = 1,
                     overrides: Iterable[str] = (), overwrite: bool = False, progress: bool = True) -> None:
    """Degrade job ``job`` of ``nj`` of ``src_dir`` under the condition; merge too when ``nj == 1``.

    ``split`` (train|test) selects the disjoint noise pool; ``seed`` is the base seed of every
    per-utterance RNG ``rng_for(seed, condition.name, utt_id)``. See the module docstring for
    the outputs.
    """
    src, out_dir, wav_dir = Path(src_dir), Path(out_dir), Path(wav_dir)
    check_split(split)
    cond = load_condition(condition_yaml, overrides)
    data = load_data_dir(src, extra=("clean.scp",))
    _check_source(src, data)
    utts = data.utt_ids
    chunk = split_for_job(utts, nj, job)
    meta = {
        "src_dir": os.path.abspath(src), "wav_dir": os.path.abspath(wav_dir), "split": split,
        "seed": int(seed), "nj": int(nj), "num_utts": len(utts), "condition": cond.to_dict(),
    }
    meta_text = _yaml_dump(meta)
    with output_lock(out_dir, run_key(meta_text), f"degrade.{job}/{nj}", what=f"degrade job {job}/{nj}"):
        _degrade_job(src, data, cond, chunk, utts, meta_text, out_dir, wav_dir, split=split, seed=seed, nj=nj,
                     job=job, overwrite=overwrite, progress=progress)


def _degrade_job(src: Path, data: DataDir, cond: Condition, chunk: list[str], utts: list[str], meta_text: str,
                 out_dir: Path, wav_dir: Path, *, split: str, seed: int, nj: int, job: int, overwrite: bool,
                 progress: bool) -> None:
    """The body of :func:`degrade_data_dir`, run while holding the output lock."""
    from tqdm import tqdm

    jdir = _job_dir(out_dir, nj, job)
    fp = fingerprint({"meta": meta_text}, inputs=[src / "wav.scp"])  # the settings and the source's audio list
    if not overwrite and Marker(jdir / DONE).is_current(fp, f"degrade job {job}/{nj} of {out_dir}"):
        log.info("degrade job %d/%d of %s (%s) already done; skipping", job, nj, src, cond.name)
        if nj == 1:
            merge_jobs(out_dir, nj)
        return
    if jdir.exists():
        shutil.rmtree(jdir)
    for stale in (out_dir / DONE,):
        if stale.exists():
            stale.unlink()
    jdir.mkdir(parents=True)
    _write_text(jdir / "meta.yaml", meta_text)

    pool = [(u, data.wav_scp[u]) for u in utts]
    wav_scp: dict[str, str] = {}
    utt2dur: dict[str, str] = {}
    clean_scp: dict[str, str] = {}
    utt2gain: dict[str, str] = {}
    aux_scp: dict[str, dict[str, str]] = {}
    wav_dir.mkdir(parents=True, exist_ok=True)
    log.info("degrade %s -> %s: condition %s, split %s, seed %d, job %d/%d (%d of %d utterances)",
             src, out_dir, cond.name, split, seed, job, nj, len(chunk), len(utts))
    for utt in tqdm(chunk, desc=f"degrade {cond.name} {job}/{nj}", unit="utt", disable=not progress,
                    mininterval=5.0):
        wave, aux, gain = degrade_one(cond, utt, data.wav_scp[utt], seed=seed, split=split, pool=pool)
        wpath = wav_dir / f"{utt}.wav"
        write_wav(wpath, wave, cond.sample_rate)  # OSError naming wpath on a full disk; no partial file
        wav_scp[utt] = str(wpath)
        utt2dur[utt] = f"{len(wave) / cond.sample_rate:.3f}"
        clean_scp[utt] = _clean_path(data, utt)
        utt2gain[utt] = GAIN_FORMAT.format(gain)
        for name, arr in aux.items():
            apath = wav_dir / f"{utt}.{name}.npy"
            _save_npy(apath, arr)
            aux_scp.setdefault(name, {})[utt] = str(apath)
    write_kv(jdir / "wav.scp", wav_scp)
    write_kv(jdir / "utt2dur", utt2dur)
    write_kv(jdir / "clean.scp", clean_scp)
    write_kv(jdir / "utt2gain", utt2gain)
    for name, m in aux_scp.items():
        write_kv(jdir / f"{name}.scp", m)
    Marker(jdir / DONE).mark(fp)
    log.info("degrade job %d/%d done: %d utterances", job, nj, len(chunk))
    if nj == 1:
        merge_jobs(out_dir, nj)


def merge_jobs(out_dir: str | Path, nj: int) -> None:
    """Check that the ``nj`` jobs finished with the same settings and write the full data dir.

    Holds the output lock alone: refused while any worker still writes ``out_dir``.
    """
    out_dir = Path(out_dir)
    with output_lock(out_dir, EXCLUSIVE, "merge", what=f"degrade merge of {out_dir}"):
        _merge_jobs(out_dir, nj)


def _merge_jobs(out_dir: Path, nj: int) -> None:
    metas = []
    for j in range(1, nj + 1):
        jdir = _job_dir(out_dir, nj, j)
        if not (jdir / DONE).is_file():
            raise RuntimeError(f"degrade job {j}/{nj} has not finished ({jdir / DONE} missing); run it first")
        metas.append((jdir / "meta.yaml").read_text(encoding="utf-8"))
    if any(m != metas[0] for m in metas[1:]):
        raise RuntimeError(f"degrade jobs under {out_dir / JOBS_DIR} ran with different settings; "
                           "rerun them with the same options")
    meta = yaml.safe_load(metas[0])
    src = Path(meta["src_dir"])
    data = load_data_dir(src)
    parts: dict[str, dict[str, str]] = {}
    aux_names: set[str] = set()
    for j in range(1, nj + 1):
        jdir = _job_dir(out_dir, nj, j)
        names = ["wav.scp", "utt2dur", "clean.scp", "utt2gain"]
        extra = sorted(p.name for p in jdir.glob("*.scp") if p.name not in ("wav.scp", "clean.scp"))
        aux_names.update(extra)
        for name in names + extra:
            if (jdir / name).is_file():
                parts.setdefault(name, {}).update(read_kv(jdir / name))
    done = set(parts.get("wav.scp", {}))
    if done != set(data.wav_scp):
        miss = sorted(set(data.wav_scp) - done)
        raise RuntimeError(f"degraded utterances do not match {src}: {len(miss)} missing"
                           + (f", e.g. {miss[0]!r}" if miss else "") + " (source changed since the jobs ran?)")
    cond = meta["condition"]
    out = DataDir(
        wav_scp=parts["wav.scp"],
        utt2spk=dict(data.utt2spk),
        text=dict(data.text) if data.text is not None else None,
        utt2dur={k: float(v) for k, v in parts["utt2dur"].items()},
        extra={"clean.scp": parts["clean.scp"], "utt2gain": parts["utt2gain"],
               "utt2cond": {u: cond["name"] for u in data.wav_scp},
               **{n: parts[n] for n in sorted(aux_names)}},
    )
    if (out_dir / "condition.yaml").is_file():  # a previous stage-2 output: drop side-output lists it had
        for old in out_dir.glob("*.scp"):
            if old.name not in ("wav.scp", "clean.scp") and old.name not in aux_names:
                old.unlink()
    save_data_dir(out, out_dir)
    resolved = dict(cond)
    resolved["provenance"] = {"src_dir": meta["src_dir"], "split": meta["split"], "seed": meta["seed"]}
    _write_text(out_dir / "condition.yaml", _yaml_dump(resolved))
    Marker(out_dir / DONE).mark(fingerprint({"metas": metas}))
    n_scaled = sum(1 for g in parts["utt2gain"].values() if float(g) < 1.0)
    log.info("wrote %s: %d utterances, condition %s%s", out_dir, len(out), cond["name"],
             f" ({n_scaled} scaled down to avoid clipping)" if n_scaled else "")
