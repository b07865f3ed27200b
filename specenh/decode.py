"""Stage 5: enhancement with a front-end, zero-shot decoding with the frozen ASR, scoring.

Per job (``--nj N --job J``) the job's chunk of utterances is read from the stage-3 feature dir
(log-mel front-ends) or from its ``wav.scp`` (waveform front-ends, whose output goes through the
ASR's feature extractor), enhanced in length-sorted batches, decoded, and written to
``out_dir/hyp.J``. The merge writes ``hyp`` and scores it against ``text`` (``scoring/``: WER/CER
with bootstrap CIs, sclite-like ``result.txt``, NeMo-style ``hyp.jsonl``) and ``decode_info.json``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from specenh.asr.frozen import FrozenASR
from specenh.data.audio import load_audio
from specenh.data.kaldi import read_kv, write_kv
from specenh.features.io import length_sorted_batches, load_feat, pad_batch, read_feats_scp, read_utt2num_frames
from specenh.features.logmel import LogMelExtractor
from specenh.frontends.base import FrontEnd, parse_options, resolve
from specenh.decode_merge import merge_and_score  # noqa: F401  (re-exported)
from specenh.utils.io import split_for_job

log = logging.getLogger(__name__)


class BatchEnhancer:
    """Enhanced log-mel features for batches of utterances of one feature dir, whatever the front-end's
    domain: log-mel front-ends read ``feats.scp`` (plus the clean features for ``oracle`` and the saved
    hole masks for oracle-mask inpainting); waveform front-ends read ``wav.scp`` and their output goes
    through the ASR's feature extractor. ``__call__(utts) -> (feats [B, D, T], lengths [B])``."""

    def __init__(self, feats_dir: str | Path, frontend: FrontEnd, feat_config, *,
                 clean_feats_dir: str | Path | None = None, device: str = "cpu"):
        self.feats_dir = Path(feats_dir)
        self.fe = frontend.to(device).eval()
        self.device = device
        self.n2f = read_utt2num_frames(self.feats_dir / "utt2num_frames")
        self.feats = read_feats_scp(self.feats_dir / "feats.scp") if frontend.domain == "logmel" else None
        self.wav_scp = read_kv(self.feats_dir / "wav.scp") if frontend.domain == "wave" else None
        if frontend.needs_clean and clean_feats_dir is None:
            raise ValueError(f"front-end {frontend.name!r} needs the clean features (--clean-feats-dir)")
        self.clean = read_feats_scp(Path(clean_feats_dir) / "feats.scp") if frontend.needs_clean else None
        self.extractor = LogMelExtractor(feat_config).to(device) if frontend.domain == "wave" else None
        self.sr = feat_config.sample_rate

    def __call__(self, batch: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        fe, device = self.fe, self.device
        if fe.domain == "logmel":
            x, lens = pad_batch([load_feat(self.feats, u) for u in batch])
            kw = {}
            if self.clean is not None:
                kw["clean"], kw["clean_lengths"] = pad_batch([load_feat(self.clean, u) for u in batch])
                kw["clean"] = kw["clean"].to(device)
            if getattr(fe, "needs_mask", False):  # oracle-mask inpainting: the saved hole masks
                from specenh.frontends.inpaint import load_mel_masks, pad_mel_masks

                kw["mask"] = pad_mel_masks(load_mel_masks(self.feats_dir, batch, self.n2f), x.shape[-1]).to(device)
            return fe.enhance(x.to(device), lens.to(device), **kw)
        waves = [torch.from_numpy(load_audio(self.wav_scp[u], self.sr, utt=u)[0]) for u in batch]
        w, wl = pad_batch([v[:, None] for v in waves])
        ew, ewl = fe.enhance(w[:, 0, :].to(device), wl.to(device))
        with torch.inference_mode():
            return self.extractor(ew, ewl)


def enhance_and_decode(feats_dir: str | Path, frontend: FrontEnd, asr: FrozenASR, utts: list[str], *,
                       batch_size: int = 32, clean_feats_dir: str | Path | None = None,
                       device: str = "cpu") -> tuple[dict[str, str], dict[str, float]]:
    """Hypotheses for ``utts`` and timing {audio_s, enhance_s, decode_s}."""
    enh = BatchEnhancer(feats_dir, frontend, asr.feat_config, clean_feats_dir=clean_feats_dir, device=device)
    n2f = enh.n2f
    hyps: dict[str, str] = {}
    t_enh = t_dec = 0.0
    for batch in tqdm(list(length_sorted_batches({u: n2f[u] for u in utts}, batch_size)), desc="decode",
                      disable=None, leave=False):
        t0 = time.perf_counter()
        y, ylens = enh(batch)
        t1 = time.perf_counter()
        texts = asr.decode(y, ylens)
        t_dec += time.perf_counter() - t1
        t_enh += t1 - t0
        for u, t in zip(batch, texts):
            hyps[u] = t
    audio_s = sum(n2f[u] for u in utts) * asr.feat_config.hop_length / asr.feat_config.sample_rate
    return hyps, {"audio_s": audio_s, "enhance_s": t_enh, "decode_s": t_dec}


def decode_job(feats_dir: str | Path | list, frontend: str, asr_model: str, out_dir: str | Path | list, *,
               nj: int = 1, job: int = 1, batch_size: int = 32,
               clean_feats_dir: str | Path | list | None = None, device: str = "cpu", num_threads: int = 1,
               overwrite: bool = False, frontend_opts: list[str] | None = None) -> None:
    """Job ``job`` of ``nj`` for one or several sets: ``feats_dir[i]`` is decoded into ``out_dir[i]``
    (with ``clean_feats_dir[i]``, or one clean dir for all). The front-end and the ASR are loaded once
    for all sets: on CPU that import and load costs more than decoding a small set."""
    feats_dirs, out_dirs = _as_list(feats_dir), _as_list(out_dir)
    if len(feats_dirs) != len(out_dirs):
        raise ValueError(f"{len(feats_dirs)} feature dirs but {len(out_dirs)} output dirs")
    cleans = _as_list(clean_feats_dir) if clean_feats_dir is not None else [None]
    if len(cleans) == 1:
        cleans = cleans * len(feats_dirs)
    if len(cleans) != len(feats_dirs):
        raise ValueError(f"{len(feats_dirs)} feature dirs but {len(cleans)} clean feature dirs")
    stamp = decode_fingerprint(asr_model, frontend, frontend_opts)
    todo = [(Path(f), Path(o), c) for f, o, c in zip(feats_dirs, out_dirs, cleans)
            if overwrite or not _is_done(Path(o) / ".done" / f"decode.{job}", stamp)]
    if not todo:
        log.info("decode job %d/%d already done for %d set(s); skipping", job, nj, len(feats_dirs))
        return
    torch.set_num_threads(num_threads)
    fe = resolve(frontend, parse_options(frontend_opts))
    asr = FrozenASR(asr_model, device=device)
    for fdir, odir, cdir in todo:
        utts = split_for_job(sorted(read_utt2num_frames(fdir / "utt2num_frames")), nj, job)
        hyps, timing = enhance_and_decode(fdir, fe, asr, utts, batch_size=batch_size, clean_feats_dir=cdir,
                                          device=device)
        odir.mkdir(parents=True, exist_ok=True)
        write_kv(odir / f"hyp.{job}", {u: hyps[u] for u in utts}) if utts else None
        (odir / f"timing.{job}.json").write_text(json.dumps(timing) + "\n")
        done = odir / ".done" / f"decode.{job}"
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(stamp)
        log.info("%s job %d/%d: %d utterances, %.0f s audio, enhance %.1fx RT, decode %.1fx RT", odir, job, nj,
                 len(utts), timing["audio_s"], timing["audio_s"] / max(timing["enhance_s"], 1e-9),
                 timing["audio_s"] / max(timing["decode_s"], 1e-9))


def decode_fingerprint(asr_model: str, frontend: str, frontend_opts: list[str] | None = None) -> str:
    """What a decode depends on besides its features: the ASR and front-end specs and, for files, their
    size and modification time. A job whose done marker holds another fingerprint (a retrained ASR or
    front-end) is decoded again instead of being skipped."""
    def ident(spec: str) -> str:
        p = Path(str(spec))
        if p.is_file():
            st = p.stat()
            return f"{spec}:{st.st_size}:{st.st_mtime_ns}"
        return str(spec)

    return json.dumps({"asr": ident(asr_model), "frontend": ident(frontend), "opts": list(frontend_opts or [])},
                      sort_keys=True)


def _is_done(marker: Path, stamp: str) -> bool:
    if not marker.exists():
        return False
    old = marker.read_text()
    if old != stamp:
        log.info("%s: decoded with another ASR or front-end (%s); decoding again", marker.parent.parent, old or "?")
        return False
    return True


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]
