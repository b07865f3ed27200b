"""``specenh enhance``: run a front-end over a stage-3 feature dir and write the enhanced features as a
new feature dir (``feats.scp`` + ``utt2num_frames`` + the data dir files), e.g. to decode them with
another ASR toolkit. Waveform front-ends are followed by the ASR-matched feature extractor."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from specenh.data.kaldi import write_kv
from specenh.features.extract import COPY_FILES
from specenh.features.io import FeatWriter, length_sorted_batches, read_utt2num_frames, unpad_batch
from specenh.features.logmel import FeatureConfig
from specenh.frontends.base import parse_options, resolve
from specenh.stages.batch_enhancer import BatchEnhancer
from specenh.utils.config import load_yaml

log = logging.getLogger(__name__)


def write_enhanced_feats(feats_dir: str | Path, frontend: str, out_dir: str | Path, *, batch_size: int = 32,
                      clean_feats_dir: str | Path | None = None, device: str = "cpu",
                      frontend_opts: list[str] | None = None) -> Path:
    feats_dir, out_dir = Path(feats_dir), Path(out_dir)
    fe = resolve(frontend, parse_options(frontend_opts))
    n2f = read_utt2num_frames(feats_dir / "utt2num_frames")
    cfg = FeatureConfig.from_dict(load_yaml(feats_dir / "feats_config.yaml"))
    enh = BatchEnhancer(feats_dir, fe, cfg, clean_feats_dir=clean_feats_dir, device=device)
    out: dict[str, object] = {}
    t0 = time.perf_counter()
    for batch in length_sorted_batches(n2f, batch_size):
        y, yl = enh(batch)
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
