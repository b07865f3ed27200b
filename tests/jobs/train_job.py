"""A training run for tests/test_harness.py, in its own process: ``train_job.py KIND ROOT EXP [KILL_AT]``.

KIND: stylegan | bwe | asr, on the tiny feature tree ROOT (bwe_online: on tests/test_online.py's clean set) (made by tests/test_harness.py). With KILL_AT the
process kills itself with SIGKILL right after step KILL_AT (a ``kill -9`` at a known point, after a checkpoint
and before the end), to test resuming.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import logging

import torch

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

kind, root, exp = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
kill_at = int(sys.argv[4]) if len(sys.argv) > 4 else None
torch.set_num_threads(1)

if kill_at is not None:
    from specenh.train import harness

    orig = harness.HarnessCallback.on_train_batch_end

    def on_train_batch_end(self, trainer, pl_module, *a, **kw):
        orig(self, trainer, pl_module, *a, **kw)
        if pl_module.steps_done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    harness.HarnessCallback.on_train_batch_end = on_train_batch_end

COMMON = {"seed": 3, "max_steps": 12, "ckpt_every_steps": 4, "val_every_steps": 3, "log_every_steps": 1,
          "num_threads": 1, "accelerator": "cpu", "progress_bar": False}

if kind == "asr":
    from specenh.asr.train import train_asr
    from specenh.utils.config import load_yaml

    cfg = load_yaml(Path(__file__).resolve().parents[2] / "conf" / "asr" / "conformer_ctc_mini.yaml")
    cfg["model"]["encoder"].update(n_layers=1, d_model=16, n_heads=2)
    cfg["model"]["decoder"]["feat_in"] = 16
    cfg["tokenizer"]["vocab_size"] = 30
    cfg["train"].update(COMMON, batch_max_frames=300, batch_size=4, warmup_steps=3, num_val_utts=4,
                        select_by="val_wer")
    train_asr(cfg, root / "train", exp, valid_feats=root / "dev")
elif kind.endswith("_online"):  # ROOT: tests/test_online.py's clean set (data/train, conf/<cond>.yaml)
    from specenh.train import FrontendData, train_frontend
    from specenh.train.online import OnlineSpec

    conds = ["noise_5db", "reverb"]
    spec = OnlineSpec(data_dir=root / "data" / "train", seed=1,
                      condition_files={f"train_{c}": root / "conf" / f"{c}.yaml" for c in conds})
    data = FrontendData(train_feats=[root / "feats" / f"train_{c}" for c in conds],
                        train_clean_feats=[root / "feats" / "train"] * 2, valid_feats=[], valid_clean_feats=[],
                        online=spec)
    cfg = {"conditions": ["*"], "model": {"hidden": 16, "dilations": [1, 2], "cutoff_hz": None},
           "data": {"max_frames": 30, "batch_size": 3, "batch_max_frames": 400, "num_val_utts": 0},
           "train": {**COMMON, "lr": 3e-3, "warmup_steps": 3}}
    train_frontend(kind[: -len("_online")], cfg, data, exp)
else:
    from specenh.train import FrontendData, train_frontend

    data = FrontendData(train_feats=[root / "train_noise"], train_clean_feats=[root / "train"],
                        valid_feats=[root / "dev_noise"], valid_clean_feats=[root / "dev"])
    if kind == "stylegan":
        cfg = {"model": {"latent_dim": 16, "style_depth": 1, "capacity": 2, "fmap_max": 8},
               "disc": {"capacity": 1, "fmap_max": 8},
               "loss": {"cx_source": "mel", "cx_patch_frames": 3, "cx_max_positions": 16, "r1_every": 2},
               "train": {**COMMON, "crop_frames": 32, "batch_size": 3, "batch_max_frames": 10000, "num_val_utts": 4,
                         "image_every_steps": 0, "select_by": "val/l1_enhanced", "lr_g": 1e-2}}
    else:
        cfg = {"conditions": ["*"], "model": {"hidden": 16, "dilations": [1, 2], "cutoff_hz": None},
               "data": {"max_frames": 30, "batch_size": 3, "batch_max_frames": 400, "num_val_utts": 4},
               "augment": {"cutoff_prob": 0.5, "cutoffs_hz": [1000, 4000], "jitter_bands": 1},
               "train": {**COMMON, "lr": 3e-3, "warmup_steps": 3, "select_by": "val_loss"}}
    train_frontend(kind, cfg, data, exp)
