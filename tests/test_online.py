"""Online training data (specenh.train.online): epoch 0 is stage 2/3's data bit for bit, later epochs draw
anew, the draws do not depend on ranks or workers, two ranks never share an utterance in an epoch, and a
resumed run continues the random streams exactly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from specenh.data.audio import load_audio, write_wav
from specenh.data.kaldi import read_kv
from specenh.features.io import load_feat, read_feats_scp
from specenh.train.data import PairedFeatDataset, collate_pairs
from specenh.train.harness import EpochIndexed, StepBatchSampler, bucket
from specenh.train.online import OnlinePairs, OnlineSpec

REPO = Path(__file__).resolve().parents[1]
CONDS = ["noise_5db", "noise_babble_5db", "reverb", "holes30", "bandlimit_2k", "codec_mulaw8k"]
RANDOM = {"noise_5db", "noise_babble_5db", "reverb", "holes30"}  # the others draw nothing
SEED = 3


def _speechlike(n: int, rng: np.random.Generator, loud: bool) -> np.ndarray:
    t = np.arange(n) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    ph = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * ph) / k for k in range(1, 12)) * (0.4 + 0.6 * np.sin(2 * np.pi * 3 * t) ** 2)
    x = x / np.abs(x).max() * (0.97 if loud else 0.3)  # loud ones clip at 5 dB SNR: stage 2 scales them
    return (x + 0.002 * rng.standard_normal(n)).astype(np.float32)


def make_clean_set(root: Path, n: int = 6) -> Path:
    """root/data/train (n synthetic utterances of 0.5-0.9 s) and root/conf/<cond>.yaml (egs/mini's)."""
    rng = np.random.default_rng(0)
    d, wd, conf = root / "data" / "train", root / "wav", root / "conf"
    for p in (d, wd, conf):
        p.mkdir(parents=True, exist_ok=True)
    lines, spk, text = [], [], []
    for i in range(n):
        u = f"s{i % 2}-u{i}"
        write_wav(wd / f"{u}.wav", _speechlike(int(rng.integers(8000, 14400)), rng, loud=i % 3 == 0), 16000)
        lines.append(f"{u} {wd / f'{u}.wav'}\n")
        spk.append(f"{u} s{i % 2}\n")
        text.append(f"{u} word{i} other\n")
    (d / "wav.scp").write_text("".join(sorted(lines)))
    (d / "utt2spk").write_text("".join(sorted(spk)))
    (d / "text").write_text("".join(sorted(text)))
    for c in CONDS:
        shutil.copy(REPO / "egs" / "mini" / "conf" / "degrade" / f"{c}.yaml", conf / f"{c}.yaml")
    return root


def spec_of(root: Path, mix: bool = False) -> OnlineSpec:
    return OnlineSpec(data_dir=root / "data" / "train", condition_files={f"train_{c}": root / "conf" / f"{c}.yaml"
                                                                        for c in CONDS}, seed=SEED, mix=mix)


@pytest.fixture(scope="module")
def stage23(tmp_path_factory) -> Path:
    """Stage 2 and stage 3 run by their own code on the tiny clean set, for every condition."""
    from specenh.degrade.apply import degrade_data_dir
    from specenh.features.config import FeatureConfig
    from specenh.features.extract import extract_job, merge_jobs

    root = make_clean_set(tmp_path_factory.mktemp("online"))
    torch.set_num_threads(1)
    for c in CONDS:
        degrade_data_dir(root / "data" / "train", root / "conf" / f"{c}.yaml", root / "data" / f"train_{c}",
                         root / "dump" / "wav" / f"train_{c}", split="train", seed=SEED, progress=False)
    for s in ["train"] + [f"train_{c}" for c in CONDS]:
        extract_job(root / "data" / s, root / "feats" / s, FeatureConfig())
        merge_jobs(root / "data" / s, root / "feats" / s, FeatureConfig(), nj=1)
    return root


# ---------------------------------------------------------------------------- epoch 0 = stage 2/3
def test_epoch0_is_stage2_and_stage3_bit_for_bit(stage23):
    """Same (seed, epoch 0, utterance, condition): the degraded audio is stage 2's wav as stage 3 reads it,
    the gain is stage 2's, the hole mask is stage 2's, and the log-mels are stage 3's bytes; epoch 1 draws anew."""
    root = stage23
    names = [f"train_{c}" for c in CONDS]
    ds = OnlinePairs(spec_of(root), names + ["train"])
    feats = {s: read_feats_scp(root / "feats" / s / "feats.scp") for s in names + ["train"]}
    assert len(ds) == 7 * 6
    scaled = 0
    for i, (k, u) in enumerate(ds.items):
        src = ds.sources[k]
        it = ds.item(i)
        assert np.array_equal(it["x"], load_feat(feats[src], u)), (src, u)
        assert np.array_equal(it["y"], load_feat(feats["train"], u)), (src, u)
        if src == "train":
            continue
        wave, gain, aux = ds.degraded_wave(k, u)
        ref, _ = load_audio(root / "dump" / "wav" / src / f"{u}.wav")
        assert np.array_equal(wave, ref), (src, u)
        assert f"{gain:.6f}" == read_kv(root / "data" / src / "utt2gain")[u]
        scaled += gain < 1
        if src == "train_holes30":
            assert np.array_equal(aux["holes_mask"], np.load(root / "dump" / "wav" / src / f"{u}.holes_mask.npy"))
    assert scaled > 0  # the anti-clipping gain was exercised
    ds.set_epoch(1)
    for i, (k, u) in enumerate(ds.items):
        src = ds.sources[k]
        it = ds.item(i)
        assert np.array_equal(it["y"], load_feat(feats["train"], u))
        same = np.array_equal(it["x"], load_feat(feats[src], u))
        assert same == (src == "train" or src.split("_", 1)[1] not in RANDOM), (src, u)


def test_online_items_equal_precomputed_items(stage23):
    """The trainers' datasets: crops, unpaired draws, gain-scaled targets and mel hole masks of the online
    items at epoch 0 equal those read from stage 2/3's outputs, item for item."""
    from specenh.train.supervised import FeatPairs, OnlineFeatPairs

    root = stage23
    names = [f"train_{c}" for c in ("noise_5db", "reverb", "holes30")] + ["train"]
    dirs = [root / "feats" / n for n in names]
    for unpaired in (False, True):
        pre = PairedFeatDataset(dirs, [root / "feats" / "train"] * len(dirs), max_frames=20, unpaired=unpaired,
                                seed=5, max_utts=4)
        onl = OnlinePairs(spec_of(root), dirs, max_frames=20, unpaired=unpaired, seed=5, max_utts=4)
        assert pre.items == onl.items and pre.frames == onl.frames
        for i in range(len(pre)):
            a, b = pre[i], onl[i]
            assert a[2] == b[2] and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (unpaired, i)
    from specenh.train.data import PairedWaveDataset

    pre = PairedWaveDataset([root / "data" / "train_noise_5db"], max_samples=4000, seed=3)  # the mask baseline's
    onl = OnlinePairs(spec_of(root), ["train_noise_5db"], domain="wave", max_samples=4000, seed=3)
    for i in range(len(pre)):
        a, b = pre[i], onl[i]
        assert a[2] == b[2] and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), ("wave", i)
    for cond in ("holes30", "noise_5db"):  # the holes masks; the anti-clipping gains (loud utterances at 5 dB)
        n = f"train_{cond}"
        pre = FeatPairs([root / "feats" / n], [root / "feats" / "train"], data_dirs=[root / "data" / n],
                        with_masks=cond == "holes30", max_frames=25, seed=2)
        onl = OnlineFeatPairs(OnlinePairs(spec_of(root), [n], max_frames=25, seed=2), with_masks=cond == "holes30")
        for i in range(len(pre)):
            a, b = pre[i], onl[i]
            assert a[2] == b[2] and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (cond, i)
            assert (a[3] is None and b[3] is None) or np.array_equal(a[3], b[3]), (cond, i)


def test_online_training_equals_precomputed_training_within_epoch_0(stage23, tmp_path):
    """A supervised front-end trained for less than an epoch on online pairs ends with the weights of one
    trained on stage 2/3's pairs, bit for bit (same items, crops, gain-scaled targets and batches)."""
    from specenh.train import FrontendData, train_frontend

    root, conds = stage23, ["noise_5db", "reverb"]
    kw = dict(train_feats=[root / "feats" / f"train_{c}" for c in conds], train_clean_feats=[root / "feats" / "train"] * 2,
              valid_feats=[], valid_clean_feats=[], train_data_dirs=[root / "data" / f"train_{c}" for c in conds])
    cfg = {"conditions": ["*"], "model": {"hidden": 8, "dilations": [1], "cutoff_hz": None},
           "data": {"max_frames": 30, "batch_size": 3, "batch_max_frames": 400, "num_val_utts": 0},
           "train": {"max_steps": 4, "warmup_steps": 1, "num_threads": 1, "accelerator": "cpu", "progress_bar": False,
                     "seed": 1}}  # 12 items in 4 batches: 4 steps are epoch 0
    weights = []
    for name, data in (("pre", FrontendData(**kw)), ("onl", FrontendData(**kw, online=spec_of(root)))):
        train_frontend("bwe", cfg, data, tmp_path / name)
        weights.append(torch.load(tmp_path / name / "model.pt", map_location="cpu", weights_only=False)["state_dict"])
        assert json.loads((tmp_path / name / "train_info.json").read_text())["steps"] == 4
    assert json.loads((tmp_path / "onl" / "train_data.json").read_text())["train_data"] == "online"
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0] if torch.is_tensor(weights[0][k]))


# ---------------------------------------------------------------------------- sharding, workers, resume
def _stream(ds, batches, steps, *, start=0, rank=0, world=1, workers=0):
    sampler = StepBatchSampler(batches, len(ds), seed=7, rank=rank, world_size=world, start=start)
    loader = torch.utils.data.DataLoader(EpochIndexed(ds, ds.set_epoch, len(ds)), batch_sampler=sampler,
                                         collate_fn=collate_pairs, num_workers=workers)
    return [b for _, b in zip(range(steps), loader)]


def test_ranks_never_draw_the_same_utterance_in_an_epoch(tmp_path):
    """Mixed sampling (one item per utterance): the two ranks' utterances of an epoch are disjoint, and each
    utterance's condition is redrawn per epoch. Per-condition items: no (condition, utterance) on both ranks."""
    root = make_clean_set(tmp_path, n=12)
    mixed = OnlinePairs(spec_of(root, mix=True), [f"train_{c}" for c in CONDS], max_frames=30)
    batches = bucket(mixed.frames, 60, 2, drop_last=True)
    per = len(batches) // 2
    samplers = [StepBatchSampler(batches, len(mixed), seed=1, rank=r, world_size=2) for r in range(2)]
    drawn = []
    for e in range(3):
        got = []
        for smp in samplers:
            got.append({mixed.items[j % len(mixed)][1] for s in range(e * per, (e + 1) * per) for j in smp.batch_at(s)})
        assert got[0] and got[1] and not got[0] & got[1]
        mixed.set_epoch(e)
        drawn.append([mixed.source_of(i) for i in range(len(mixed))])
    assert drawn[0] != drawn[1] != drawn[2] and len(set(drawn[0])) > 1
    pairs = OnlinePairs(spec_of(root), [f"train_{c}" for c in CONDS[:2]], max_frames=30)
    batches = bucket(pairs.frames, 60, 2, drop_last=True)
    samplers = [StepBatchSampler(batches, len(pairs), seed=1, rank=r, world_size=2) for r in range(2)]
    per = len(batches) // 2
    got = [{j for s in range(per) for j in smp.batch_at(s)} for smp in samplers]
    assert got[0] and not got[0] & got[1]


def test_draws_do_not_depend_on_workers_and_resume_continues_the_streams(tmp_path):
    """The batches of steps k.. of a run restarted at step k (a fresh dataset, as after a kill) equal those
    of an uninterrupted run, across an epoch boundary (new draws), and two DataLoader workers give the same
    batches as none."""
    root = make_clean_set(tmp_path, n=6)
    names = ["train_noise_5db", "train_reverb"]
    ds = OnlinePairs(spec_of(root), names, seed=4)  # whole utterances: epochs differ by the draws only
    batches = bucket(ds.frames, 270, 3)
    n = len(batches)
    full = _stream(ds, batches, n + 3)
    resumed = _stream(OnlinePairs(spec_of(root), names, seed=4), batches, 4, start=n - 1)
    for a, b in zip(full[n - 1 :], resumed):
        assert a["keys"] == b["keys"] and torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    # epoch 1 redraws the degradation: an item of epoch 0 and of epoch 1 differ in x, not in y
    e0 = {k: (x[:, :t], y[:, :t]) for b in full[:n] for k, x, y, t in zip(b["keys"], b["x"], b["y"], b["x_len"])}
    e1 = {k: (x[:, :t], y[:, :t]) for b in full[n:] for k, x, y, t in zip(b["keys"], b["x"], b["y"], b["x_len"])}
    common = [k for k in e1 if k in e0]
    assert common
    for k in common:
        assert torch.equal(e0[k][1], e1[k][1]) and not torch.equal(e0[k][0], e1[k][0]), k
    workers = _stream(OnlinePairs(spec_of(root), names, seed=4), batches, n + 1, workers=2)
    for a, b in zip(full, workers):
        assert a["keys"] == b["keys"] and torch.equal(a["x"], b["x"])


def test_harness_state_round_trip_resumes_the_online_stream(tmp_path):
    """The GAN trainer's own loader: a module restored from another's checkpoint state (the harness's
    on_save/on_load_checkpoint: steps_done) hands out exactly the online batches the first would have."""
    from specenh.train import FrontendData
    from specenh.train.gan import StyleGANModule, resolve_config

    root = make_clean_set(tmp_path, n=6)
    feats = root / "feats"
    data = FrontendData(train_feats=[feats / "train_noise_5db", feats / "train_holes30"],
                        train_clean_feats=[feats / "train"] * 2, valid_feats=[], valid_clean_feats=[],
                        online=spec_of(root))
    cfg = resolve_config({"model": {"latent_dim": 8, "style_depth": 1, "capacity": 1, "fmap_max": 4},
                          "disc": {"capacity": 1, "fmap_max": 4}, "loss": {"cx_source": "mel"},
                          "train": {"seed": 2, "crop_frames": 24, "batch_size": 3, "batch_max_frames": 1000,
                                    "include_clean": True, "condition_weights": {"noise_*": 2}}})
    first = StyleGANModule(cfg, data, None, 100)
    it = iter(first.train_dataloader())
    ref = [next(it) for _ in range(9)]  # 24 items / 3: 8 batches per epoch; step 8 is in epoch 1
    assert len(first.train_pairs()) == 6 * 4  # noise twice, holes, clean
    ckpt: dict = {}
    first.steps_done = 5
    first.on_save_checkpoint(ckpt)
    second = StyleGANModule(cfg, data, None, 100)
    second.on_load_checkpoint(ckpt)
    assert second.steps_done == 5
    it2 = iter(second.train_dataloader())
    for a in ref[5:]:
        b = next(it2)
        assert a["keys"] == b["keys"] and torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


def test_train_frontend_cli_online_options(tmp_path):
    """--train-data online builds the spec from the clean set and the condition files, and refuses what is missing."""
    import argparse

    from specenh.train.cli import online_spec

    root = make_clean_set(tmp_path, n=2)
    args = argparse.Namespace(degrade_conf_dir=str(root / "conf"), data_root=str(root / "data"), train_set="train",
                              conditions=["reverb", "holes30"], feature_config=None, seed=4, online_mix=True)
    spec = online_spec(args)
    assert spec.seed == 4 and spec.mix and set(spec.condition_files) == {"train_reverb", "train_holes30"}
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        online_spec(argparse.Namespace(**{**vars(args), "conditions": ["nope"]}))
    with pytest.raises(FileNotFoundError, match="wav.scp"):
        online_spec(argparse.Namespace(**{**vars(args), "train_set": "dev"}))


# ---------------------------------------------------------------------------- kill -9 (slow)
@pytest.mark.slow
def test_killed_online_run_resumes_to_the_same_weights(tmp_path):
    """tests/jobs/train_job.py on online data (12 steps = 3 epochs of fresh draws), SIGKILLed after step 6
    (checkpoint at 4) and rerun: bit-identical weights to an uninterrupted run."""
    root = make_clean_set(tmp_path / "data", n=6)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def job(exp: Path, kill: int | None = None):
        cmd = [sys.executable, str(REPO / "tests" / "jobs" / "train_job.py"), "bwe_online", str(root), str(exp)]
        return subprocess.run(cmd + ([str(kill)] if kill else []), env=env, capture_output=True, text=True,
                              timeout=600)

    r = job(tmp_path / "ref")
    assert r.returncode == 0, r.stderr[-3000:]
    assert job(tmp_path / "cut", 6).returncode == -9
    r2 = job(tmp_path / "cut")
    assert r2.returncode == 0 and "resuming from" in r2.stderr, r2.stderr[-3000:]
    a, b = (torch.load(tmp_path / d / "model.pt", map_location="cpu", weights_only=False)["state_dict"]
            for d in ("ref", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))


@pytest.mark.slow
@pytest.mark.e2e
def test_recipe_with_online_training_data(tmp_path, monkeypatch):
    """egs/mini at a tiny size with --train_data online: stage 2/3 write no training pair (only the test
    conditions and the validation subset), and stage 4 trains bwe from the clean audio."""
    from test_recipe_mini import TINY_ASR, make_recipe_copy, run_recipe

    d = make_recipe_copy(tmp_path)
    monkeypatch.chdir(d)
    r = run_recipe(d, "--stage", "1", "--stop-stage", "4", "--train_data", "online", "--valid_subset", "3",
                   "--local_data_opts", "--num_train 12 --num_dev 6 --num_test 4",
                   "--train_conditions", "bandlimit_2k", "--test_conditions", "noise_0db", "--asr_args", TINY_ASR,
                   "--frontends", "identity bwe",
                   "--frontend_args", "bwe:train.max_steps=3 bwe:model.hidden=8 bwe:data.num_val_utts=2 "
                                      "bwe:train.val_every_steps=0 bwe:train.warmup_steps=1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (d / "data" / "train_bandlimit_2k").exists() and not (d / "dump" / "wav" / "train_bandlimit_2k").exists()
    assert not (d / "data" / "dev_bandlimit_2k").exists()
    assert len(read_kv(d / "data" / "dev_sub3" / "wav.scp")) == 3
    for s in ("dev_sub3", "dev_sub3_bandlimit_2k", "test_noise_0db", "train", "dev"):
        assert (d / "dump" / "feats" / s / "feats.scp").is_file(), s
    info = json.loads((d / "exp" / "frontend_bwe" / "train_info.json").read_text())
    assert info["steps"] == 3 and info["val"]  # validated on the precomputed subset
    assert "--train-data online" in (d / "exp" / "frontend_bwe" / "train.log").read_text()


def test_a_checkpoint_is_not_resumed_on_other_training_data(tmp_path):
    """A run trained on precomputed pairs is not continued on online ones (or the reverse) in the same exp dir."""
    from specenh.train import FrontendData, check_data_mode

    pre = FrontendData([], [], [], [])
    onl = FrontendData([], [], [], [], online=OnlineSpec(data_dir=tmp_path, condition_files={}))
    check_data_mode(tmp_path, onl)  # no checkpoint: anything goes, the mode is recorded
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    check_data_mode(tmp_path, onl)
    with pytest.raises(ValueError, match="'train_data': 'precomputed'"):
        check_data_mode(tmp_path, pre)
    (tmp_path / "train_data.json").unlink()  # an older exp dir: precomputed
    check_data_mode(tmp_path, pre)
    with pytest.raises(ValueError, match="online"):
        check_data_mode(tmp_path, onl)
