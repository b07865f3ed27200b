"""``specenh enhance``: run a front-end over a stage-3 feature dir and write the enhanced features as a
new feature dir (``feats.scp`` + ``utt2num_frames`` + the data dir files), e.g. to decode them with
another ASR toolkit. Waveform front-ends are followed by the ASR-matched feature extractor."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import torch

from specenh.data.audio import load_audio
from specenh.data.kaldi import read_kv, write_kv
from specenh.features.extract import COPY_FILES
from specenh.features.io import (FeatWriter, length_sorted_batches, load_feat, pad_batch, read_feats_scp,
                                 read_utt2num_frames, unpad_batch)
from specenh.features.logmel import FeatureConfig, LogMelExtractor
from specenh.frontends.base import parse_options, resolve
from specenh.utils.config import load_yaml

log = logging.getLogger(__name__)


def enhance_feats_dir(feats_dir: str | Path, frontend: str, out_dir: str | Path, *, batch_size: int = 32,
                      clean_feats_dir: str | Path | None = None, device: str = "cpu",
                      frontend_opts: list[str] | None = None) -> Path:
    feats_dir, out_dir = Path(feats_dir), Path(out_dir)
    fe = resolve(frontend, parse_options(frontend_opts)).to(device).eval()
    n2f = read_utt2num_frames(feats_dir / "utt2num_frames")
    cfg = FeatureConfig.from_dict(load_yaml(feats_dir / "feats_config.yaml"))
    feats = read_feats_scp(feats_dir / "feats.scp")
    clean = read_feats_scp(Path(clean_feats_dir) / "feats.scp") if fe.needs_clean else None
    wav = read_kv(feats_dir / "wav.scp") if fe.domain == "wave" else None
    ext = LogMelExtractor(cfg).to(device) if fe.domain == "wave" else None
    out: dict[str, object] = {}
    t0 = time.perf_counter()
    for batch in length_sorted_batches(n2f, batch_size):
        if fe.domain == "logmel":
            x, lens = pad_batch([load_feat(feats, u) for u in batch])
            kw = {}
            if clean is not None:
                kw["clean"], kw["clean_lengths"] = pad_batch([load_feat(clean, u) for u in batch])
            if getattr(fe, "needs_mask", False):
                from specenh.frontends.inpaint import load_mel_masks, pad_mel_masks

                kw["mask"] = pad_mel_masks(load_mel_masks(feats_dir, batch, n2f), x.shape[-1]).to(device)
            y, yl = fe.enhance(x.to(device), lens.to(device), **kw)
        else:
            w, wl = pad_batch([torch.from_numpy(load_audio(wav[u], cfg.sample_rate, utt=u)[0])[:, None] for u in batch])
            ew, ewl = fe.enhance(w[:, 0].to(device), wl.to(device))
            with torch.inference_mode():
                y, yl = ext(ew, ewl)
        for u, m in zip(batch, unpad_batch(y, yl)):
            out[u] = m
    el = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    with FeatWriter(out_dir / "feats.ark", out_dir / "feats.scp") as w:
        for u in sorted(out):
            w.write(u, out[u])
    write_kv(out_dir / "utt2num_frames", {u: out[u].shape[0] for u in out})
    for name in COPY_FILES + ("feats_config.yaml",):
        if (feats_dir / name).is_file():
            shutil.copyfile(feats_dir / name, out_dir / name)
    audio_s = sum(n2f.values()) * cfg.hop_length / cfg.sample_rate
    log.info("enhanced %d utterances (%.0f s) with %s at %.0fx real time -> %s", len(out), audio_s, frontend,
             audio_s / max(el, 1e-9), out_dir)
    return out_dir / "feats.scp"
