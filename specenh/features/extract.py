"""Stage 3: log-mel extraction over a data dir, split into ``nj`` jobs, merged into ``feats.scp``.

Layout written under ``out_dir`` (a data dir of its own, usable by every later stage)::

    feats.<job>.ark / feats.<job>.scp / utt2num_frames.<job>   per job (job 1..nj)
    .done/extract.<job>                                         job finished
    feats.scp, utt2num_frames, feats_config.yaml                after merge
    wav.scp, text, utt2spk, spk2utt, utt2dur, clean.scp, ...   copied from the source data dir

Bad input is refused, naming the utterance: the data dir must pass ``validate_data_dir`` (text
optional, order not checked); silent, truncated or unreadable audio stops the job. A job that fails
(e.g. a full disk) removes its partial ark/scp. While a job runs it holds ``<out_dir>/.specenh.lock``
(:mod:`specenh.utils.lock`): a job of another run (other data dir, features or ``nj``) or a second
worker for the same job refuses to start, naming the PIDs; the merge waits for no one and refuses
while any job runs.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from specenh.data.audio import load_audio
from specenh.data.kaldi import c_sort_key, load_data_dir, read_kv, write_kv
from specenh.data.validate import validate_data_dir
from specenh.features.io import FeatWriter, read_feats_scp
from specenh.features.config import FeatureConfig
from specenh.utils.config import load_yaml, save_config
from specenh.utils.done import Marker, fingerprint
from specenh.utils.io import split_for_job
from specenh.utils.lock import EXCLUSIVE, output_lock, run_key

log = logging.getLogger(__name__)


def feature_config_from_mapping(cfg: Mapping[str, Any]) -> FeatureConfig:
    """Accept a NeMo model config (``preprocessor`` or ``model.preprocessor``) or a plain feature config."""
    if "model" in cfg and isinstance(cfg["model"], Mapping) and "preprocessor" in cfg["model"]:
        return FeatureConfig.from_nemo(cfg["model"]["preprocessor"])
    if "preprocessor" in cfg:
        return FeatureConfig.from_nemo(cfg["preprocessor"])
    if "features" in cfg and isinstance(cfg["features"], Mapping):
        return FeatureConfig.from_dict(cfg["features"])
    return FeatureConfig.from_dict(cfg)


def feature_config_from_file(path: str | Path | None) -> FeatureConfig:
    return FeatureConfig() if path is None else feature_config_from_mapping(load_yaml(path))


def _done(out_dir: Path, job: int) -> Marker:
    return Marker(out_dir / ".done" / f"extract.{job}")


def job_fingerprint(data_dir: Path, cfg: FeatureConfig, nj: int, job: int) -> str:
    """What a feature job depends on: the feature config, the split and the data dir's audio list."""
    return fingerprint({"features": cfg.to_dict(), "nj": int(nj), "job": int(job)},
                       inputs=[Path(data_dir) / "wav.scp"])


def extract_job(data_dir: str | Path, out_dir: str | Path, cfg: FeatureConfig, *, nj: int = 1, job: int = 1,
                batch_size: int = 16, num_threads: int = 1, overwrite: bool = False) -> int:
    """Extract features for job ``job`` of ``nj``; returns the number of utterances written.

    Utterances are processed in length-sorted batches (one batched STFT each) and written in
    sorted utterance order, so the ark bytes do not depend on the batching.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    key = run_key(data_dir.resolve(), sorted(cfg.to_dict().items()), nj)
    with output_lock(out_dir, key, f"extract.{job}/{nj}", what=f"feature job {job}/{nj}"):
        return _extract_job(data_dir, out_dir, cfg, nj=nj, job=job, batch_size=batch_size, num_threads=num_threads,
                            overwrite=overwrite)


def _extract_job(data_dir: Path, out_dir: Path, cfg: FeatureConfig, *, nj: int, job: int, batch_size: int,
                 num_threads: int, overwrite: bool) -> int:
    """The body of :func:`extract_job`, run while holding the output lock."""
    import torch  # here, not at the top: merging the jobs needs no torch (one process per stage step)

    from specenh.features.logmel import LogMelExtractor

    done = _done(out_dir, job)
    fp = job_fingerprint(data_dir, cfg, nj, job)
    if not overwrite and done.is_current(fp, f"{out_dir} feature job {job}/{nj}"):
        log.info("job %d/%d already done (%s); skipping", job, nj, done.path)
        return 0
    done.clear()  # redone: not done until the new outputs are complete
    torch.set_num_threads(num_threads)
    validate_data_dir(data_dir, require_text=False, check_sorted=False)
    d = load_data_dir(data_dir)
    utts = split_for_job(d.utt_ids, nj, job)
    extractor = LogMelExtractor(cfg).eval()
    waves: dict[str, np.ndarray] = {}
    for utt in utts:
        waves[utt], _ = load_audio(d.wav_scp[utt], target_sr=cfg.sample_rate, utt=utt, allow_silent=False)
    order = sorted(utts, key=lambda u: (len(waves[u]), u))
    feats: dict[str, np.ndarray] = {}
    t0, audio_s = time.perf_counter(), 0.0
    with torch.inference_mode():
        for i in tqdm(range(0, len(order), batch_size), desc=f"feats job {job}/{nj}", disable=None, leave=False):
            batch = order[i : i + batch_size]
            lens = torch.tensor([len(waves[u]) for u in batch])
            wav = torch.zeros(len(batch), int(lens.max()))
            for j, u in enumerate(batch):
                wav[j, : lens[j]] = torch.from_numpy(waves[u])
            x, frames = extractor(wav, lens)
            for j, u in enumerate(batch):
                if int(frames[j]) < 1:
                    raise ValueError(f"utterance {u!r} ({d.wav_scp[u]}) is too short for one frame "
                                     f"({int(lens[j])} samples)")
                feats[u] = x[j, :, : int(frames[j])].T.numpy()
            audio_s += float(lens.sum()) / cfg.sample_rate
    elapsed = time.perf_counter() - t0
    ark, scp = out_dir / f"feats.{job}.ark", out_dir / f"feats.{job}.scp"
    _write_feats(ark, scp, utts, feats)
    write_kv(out_dir / f"utt2num_frames.{job}", {u: feats[u].shape[0] for u in utts})
    log.info("job %d/%d: %d utterances, %.1f s of audio, %.1fx real time (compute only)",
             job, nj, len(utts), audio_s, audio_s / max(elapsed, 1e-9))
    done.mark(fp)
    return len(utts)


def _write_feats(ark: Path, scp: Path, utts: list[str], feats: Mapping[str, np.ndarray]) -> None:
    """Write the job's ark/scp; on any error remove both (no partial ark) and name the ark in the OSError."""
    try:
        with FeatWriter(ark, scp) as w:
            for u in utts:
                w.write(u, feats[u])
    except BaseException as e:
        for p in (ark, scp):
            p.unlink(missing_ok=True)
        if isinstance(e, OSError) and not (e.filename or str(ark) in str(e)):
            code = e.errno
            reason = e.strerror or (os.strerror(code) if code else str(e))
            raise OSError(code, f"cannot write features {ark} (partial ark and scp removed): {reason}") from None
        raise


COPY_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "clean.scp", "utt2gain", "utt2cond", "holes_mask.scp",
              "condition.yaml")


def merge_jobs(data_dir: str | Path, out_dir: str | Path, cfg: FeatureConfig, *, nj: int) -> None:
    """Concatenate the job scps into ``feats.scp``/``utt2num_frames`` and copy the data dir files.

    Refused while any job still writes ``out_dir`` (the output lock, held alone).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    with output_lock(out_dir, EXCLUSIVE, "merge", what=f"feature merge of {out_dir}"):
        _merge_jobs(data_dir, out_dir, cfg, nj=nj)


def _merge_jobs(data_dir: Path, out_dir: Path, cfg: FeatureConfig, *, nj: int) -> None:
    missing = [j for j in range(1, nj + 1) if not _done(out_dir, j).exists()]
    if missing:
        raise RuntimeError(f"{out_dir}: feature jobs {missing} of {nj} have not finished; rerun stage 3")
    stale = [j for j in range(1, nj + 1)
             if (_done(out_dir, j).read() or "").split()[:1] != [job_fingerprint(data_dir, cfg, nj, j)]]
    if stale:
        raise RuntimeError(f"{out_dir}: feature jobs {stale} of {nj} ran with another feature config or data dir; "
                           f"rerun the jobs (stage 3) before merging")
    scp: dict[str, str] = {}
    n2f: dict[str, str] = {}
    for j in range(1, nj + 1):
        scp.update(read_kv(out_dir / f"feats.{j}.scp"))
        n2f.update(read_kv(out_dir / f"utt2num_frames.{j}"))
    d = load_data_dir(data_dir)
    if set(scp) != set(d.wav_scp):
        lost = sorted(set(d.wav_scp) - set(scp), key=c_sort_key)[:5]
        raise RuntimeError(f"{out_dir}: features missing for {len(set(d.wav_scp) - set(scp))} utterances, e.g. {lost}")
    write_kv(out_dir / "feats.scp", scp)
    write_kv(out_dir / "utt2num_frames", n2f)
    for name in COPY_FILES:
        if (data_dir / name).is_file():
            shutil.copyfile(data_dir / name, out_dir / name)
    save_config(cfg.to_dict(), out_dir / "feats_config.yaml")


def extract_features(data_dir: str | Path, out_dir: str | Path, cfg: FeatureConfig | None = None, *,
                     nj: int = 1, batch_size: int = 16, overwrite: bool = False) -> Path:
    """All jobs in this process, then merge (for tests and notebooks); returns ``out_dir/feats.scp``."""
    cfg = cfg or FeatureConfig()
    for job in range(1, nj + 1):
        extract_job(data_dir, out_dir, cfg, nj=nj, job=job, batch_size=batch_size, overwrite=overwrite)
    merge_jobs(data_dir, out_dir, cfg, nj=nj)
    return Path(out_dir) / "feats.scp"


def check_features(out_dir: str | Path, cfg: FeatureConfig) -> None:
    """Check every ark entry is readable with the right dimension and frame count (raise naming the utt)."""
    out_dir = Path(out_dir)
    feats = read_feats_scp(out_dir / "feats.scp")
    n2f = {k: int(v) for k, v in read_kv(out_dir / "utt2num_frames").items()}
    for utt, n in n2f.items():
        x = feats[utt]
        if x.shape != (n, cfg.features):
            raise ValueError(f"{out_dir}: utterance {utt!r} has features {x.shape}, expected ({n}, {cfg.features})")


__all__ = ["extract_job", "merge_jobs", "extract_features", "check_features", "feature_config_from_file",
           "feature_config_from_mapping"]
