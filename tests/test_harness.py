"""The trainer harness (specenh.train.harness): one config schema, step budgets, the data stream and the
random streams as functions of the step, and a run killed with SIGKILL that resumes to the same weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from specenh.features.io import FeatWriter
from specenh.train.harness import (StepBatchSampler, TRAIN_DEFAULTS, bucket, budget_steps, lr_factor,
                                   resolve_train)

REPO = Path(__file__).resolve().parents[1]
WORDS = "the old farmer carried seven heavy baskets to market before noon".split()


# ---------------------------------------------------------------------------- schema and budgets
def test_schema_rejects_unknown_and_renamed_keys():
    tc = resolve_train({"max_steps": 10, "lr": 1.0}, {"lr": 1e-3}, "mask")
    assert tc["max_steps"] == 10 and tc["lr"] == 1.0 and tc["max_minutes"] is None  # the cap is off by default
    assert set(TRAIN_DEFAULTS) <= set(tc)
    with pytest.raises(ValueError, match=r"unknown train keys \['lrr'\]"):
        resolve_train({"lrr": 1}, {"lr": 1e-3}, "mask")
    with pytest.raises(ValueError, match="val_every_n_steps: use val_every_steps"):
        resolve_train({"val_every_n_steps": 5}, {}, "bwe")
    with pytest.raises(ValueError, match="anneal_by_time"):
        resolve_train({"anneal_by_time": True}, {}, "bwe")
    with pytest.raises(ValueError, match="max_steps"):
        resolve_train({"max_steps": None}, {}, "bwe")
    assert budget_steps({"max_steps": None, "max_epochs": 3}, 7) == 21
    assert budget_steps({"max_steps": 5, "max_epochs": 3}, 7) == 5


def test_every_trainer_rejects_unknown_keys():
    from specenh.train.gan import resolve_config as gan_cfg
    from specenh.train.supervised import resolve_config as sup_cfg

    with pytest.raises(ValueError, match="unknown train keys"):
        gan_cfg({"train": {"max_minutes_": 3}})
    with pytest.raises(ValueError, match="top-level"):
        gan_cfg({"seed": 3})
    with pytest.raises(ValueError, match="unknown train keys"):
        sup_cfg("mask", {"train": {"lr_g": 3}})
    with pytest.raises(ValueError, match="unknown data keys"):
        sup_cfg("mask", {"data": {"num_workers": 3}})  # moved to train.num_workers
    assert gan_cfg({})["train"]["seed"] == 0 and sup_cfg("bwe", {})["train"]["seed"] == 0


def test_lr_schedule_runs_over_steps():
    f = [lr_factor(s, 10, 110, 0.05) for s in range(120)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.525) and f[110] == pytest.approx(0.05) and f[119] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))


def test_no_shipped_config_sets_a_wall_clock_budget():
    import yaml

    files = list((REPO / "conf").rglob("*.yaml")) + list((REPO / "egs").glob("*/conf/**/*.yaml"))
    assert files
    for p in files:
        cfg = yaml.safe_load(p.read_text()) or {}
        train = cfg.get("train") if isinstance(cfg, dict) else None
        if isinstance(train, dict):
            assert train.get("max_minutes") is None, p


# ---------------------------------------------------------------------------- the data stream
def test_batches_are_a_function_of_the_step():
    lengths = list(np.random.default_rng(0).integers(10, 100, 50))
    batches = bucket(lengths, 200, 4)
    a = StepBatchSampler(batches, 50, seed=1)
    stream = [b for _, b in zip(range(3 * len(batches)), a)]
    # a sampler started at step k yields exactly the stream from k on (resume)
    b = StepBatchSampler(batches, 50, seed=1, start=17)
    assert [x for _, x in zip(range(10), b)] == stream[17:27]
    # every item once per epoch, epochs reshuffled, the epoch encoded in the index
    n = len(batches)
    for e in range(3):
        items = sorted(j - e * 50 for bt in stream[e * n : (e + 1) * n] for j in bt)
        assert items == list(range(50))
    assert stream[:n] != [[j - 50 for j in bt] for bt in stream[n : 2 * n]]
    # another seed, another order
    assert [x for _, x in zip(range(n), StepBatchSampler(batches, 50, seed=2))] != stream[:n]


def test_ranks_never_share_an_item_in_an_epoch():
    lengths = list(np.random.default_rng(1).integers(10, 100, 64))
    batches = bucket(lengths, 150, 4, drop_last=True)
    samplers = [StepBatchSampler(batches, 64, seed=0, rank=r, world_size=2) for r in range(2)]
    per = samplers[0].per_rank
    for e in range(2):
        got = [set(j for s in range(e * per, (e + 1) * per) for j in smp.batch_at(s)) for smp in samplers]
        assert not got[0] & got[1] and got[0] and got[1]


# ---------------------------------------------------------------------------- kill -9 and resume
@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    for s, n in (("train", 12), ("dev", 4)):
        sets = {s: {}, f"{s}_noise": {}}
        texts = {}
        for i in range(n):
            t = int(rng.integers(40, 80))
            c = (-10 + 3 * np.sin(np.arange(t)[:, None] / 5.0 + np.arange(80)[None, :] / 9.0 + i)
                 + 0.3 * rng.standard_normal((t, 80))).astype(np.float32)
            sets[s][f"u{s}{i}"] = c
            sets[f"{s}_noise"][f"u{s}{i}"] = np.logaddexp(c, -7 + rng.standard_normal((t, 80))).astype(np.float32)
            texts[f"u{s}{i}"] = " ".join(rng.choice(WORDS, size=3))
        for name, mats in sets.items():
            d = root / name
            d.mkdir(parents=True)
            with FeatWriter(d / "feats.ark", d / "feats.scp") as w:
                for u, m in mats.items():
                    w.write(u, m)
            (d / "utt2num_frames").write_text("".join(f"{u} {m.shape[0]}\n" for u, m in mats.items()))
            (d / "text").write_text("".join(f"{u} {texts[u]}\n" for u in mats))
    return root


def _job(kind: str, root: Path, exp: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "tests" / "jobs" / "train_job.py"), kind, str(root), str(exp)]
    return subprocess.run(cmd + ([str(kill_at)] if kill_at else []), env=env, capture_output=True, text=True,
                          timeout=600)


def _weights(exp: Path, kind: str) -> dict[str, torch.Tensor]:
    if kind == "asr":
        import tarfile

        with tarfile.open(exp / "model.nemo") as t:
            member = next(m for m in t.getmembers() if m.name.endswith("model_weights.ckpt"))
            return torch.load(t.extractfile(member), map_location="cpu", weights_only=False)
    return torch.load(exp / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize("kind", ["stylegan", "bwe", "asr"])
def test_killed_run_resumes_to_the_same_weights(kind, tiny_root, tmp_path):
    """SIGKILL after step 6 (checkpoint at step 4), the same command again: it resumes from step 4 and ends
    with weights bit-identical to an uninterrupted run (same thread count), selection included."""
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    r = _job(kind, tiny_root, ref)
    assert r.returncode == 0, r.stderr[-3000:]
    k = _job(kind, tiny_root, cut, kill_at=6)
    assert k.returncode == -9, (k.returncode, k.stderr[-2000:])
    assert (cut / "checkpoints" / "last.ckpt").is_file() and not (cut / "train_info.json").exists()
    r2 = _job(kind, tiny_root, cut)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "resuming from" in r2.stderr
    info, info_ref = (json.loads((d / "train_info.json").read_text()) for d in (cut, ref))
    assert info["resumed_from_step"] == 4 and info_ref["resumed_from_step"] == 0
    assert info["steps"] == info_ref["steps"] == 12 and info["truncated"] is False and info["seed"] == 3
    assert info["selected"] == info_ref["selected"] and info["val"] == info_ref["val"]
    a, b = _weights(ref, kind), _weights(cut, kind)
    assert a.keys() == b.keys()
    diff = [name for name in a if torch.is_tensor(a[name]) and not torch.equal(a[name], b[name])]
    assert not diff, diff[:5]


def test_safety_cap_marks_a_run_truncated(tiny_root, tmp_path):
    from specenh.train import FrontendData, train_frontend

    data = FrontendData(train_feats=[tiny_root / "train_noise"], train_clean_feats=[tiny_root / "train"],
                        valid_feats=[], valid_clean_feats=[])
    cfg = {"conditions": ["*"], "model": {"hidden": 8, "dilations": [1], "cutoff_hz": None},
           "data": {"max_frames": 30, "batch_size": 3, "batch_max_frames": 400, "num_val_utts": 0},
           "train": {"max_steps": 10 ** 7, "max_minutes": 0.02, "num_threads": 1, "accelerator": "cpu"}}
    train_frontend("bwe", cfg, data, tmp_path / "exp")
    info = json.loads((tmp_path / "exp" / "train_info.json").read_text())
    assert info["truncated"] is True and 0 < info["steps"] < 10 ** 7


def test_recipe_seed_reaches_every_trainer():
    """--seed / --num-threads of train-frontend and train-asr set train.seed / train.num_threads; an explicit
    train.seed=... override wins."""
    import argparse

    from specenh.train.cli import apply_run_options

    for overrides, want in (([], 7), (["train.seed=2"], 2)):
        cfg = {"train": {"seed": 2 if overrides else 0, "num_threads": 1}}  # as load_config leaves it
        apply_run_options(cfg, argparse.Namespace(seed=7, num_threads=2, overrides=overrides))
        assert cfg["train"] == {"seed": want, "num_threads": 2}
    cfg = {"train": {"seed": 5}}
    apply_run_options(cfg, argparse.Namespace(seed=None, num_threads=None, overrides=[]))
    assert cfg["train"]["seed"] == 5


def test_resume_refuses_another_config_but_allows_runtime_keys(tiny_root, tmp_path):
    """A checkpoint written under one config is never resumed under another (a mixed model); runtime keys
    (threads, ...) may differ, and a finished run is then kept as it is."""
    from specenh.train import FrontendData, train_frontend

    data = FrontendData(train_feats=[tiny_root / "train_noise"], train_clean_feats=[tiny_root / "train"],
                        valid_feats=[], valid_clean_feats=[])

    def cfg(**train):
        return {"conditions": ["*"], "model": {"hidden": 8, "dilations": [1], "cutoff_hz": None},
                "data": {"max_frames": 30, "batch_size": 3, "batch_max_frames": 400, "num_val_utts": 0},
                "train": {"max_steps": 4, "num_threads": 1, "accelerator": "cpu", **train}}

    exp = tmp_path / "exp"
    train_frontend("bwe", cfg(), data, exp)
    before = (exp / "model.pt").read_bytes()
    with pytest.raises(ValueError, match=r"another config \(1 key\(s\) differ: train.lr"):
        train_frontend("bwe", cfg(lr=0.5), data, exp)
    train_frontend("bwe", cfg(num_threads=2), data, exp)  # finished: kept, not retrained nor rewritten
    info = json.loads((exp / "train_info.json").read_text())
    assert info["resumed_from_step"] == 0 and info["steps"] == 4 and info["num_threads"] == 1
    assert (exp / "model.pt").read_bytes() == before  # untouched: later stages' fingerprints stay valid


def test_a_key_added_later_at_its_as_before_value_is_no_difference(tmp_path):
    """A checkpoint from before a config key existed resumes when the key has the value that reproduces
    the older code (harness.ADDED_KEYS), and is refused at any other value."""
    from specenh.train.harness import ADDED_KEYS, check_resumable, config_identity, register_added_key

    old = config_identity({"loss": {"fm_weight": 1.0}, "train": {"lr": 0.1}})
    try:
        register_added_key("loss.test_added", 0.0)
        check_resumable(old, {"loss": {"fm_weight": 1.0, "test_added": 0.0}, "train": {"lr": 0.1}}, tmp_path)
        with pytest.raises(ValueError, match="loss.test_added"):
            check_resumable(old, {"loss": {"fm_weight": 1.0, "test_added": 0.5}, "train": {"lr": 0.1}}, tmp_path)
        with pytest.raises(ValueError, match="loss.other_new"):  # not declared: a difference
            check_resumable(old, {"loss": {"fm_weight": 1.0, "other_new": 0.0}, "train": {"lr": 0.1}}, tmp_path)
    finally:
        ADDED_KEYS.pop("loss.test_added", None)
    import specenh.train.gan  # noqa: F401  (declares the CTC loss's key)

    assert ADDED_KEYS["loss.ctc_weight"] == 0.0
