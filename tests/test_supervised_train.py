"""Stage-4 training of the supervised baselines (mask, inpaint, bwe) on tiny synthetic data dirs:
the loss decreases on a trivially learnable pair, training resumes, model.pt loads, and a config
whose conditions match no training dir fails clearly."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from specenh.features.io import FeatWriter
from specenh.frontends import load
from specenh.features.logmel import FeatureConfig, mel_filterbank
from specenh.frontends.bwe import LOG_FLOOR
from specenh.frontends.inpaint import stft_mask_to_mel
from specenh.train import FrontendData, train_frontend


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread (on a shared, oversubscribed CPU two threads can be 100x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _write_feats(d: Path, mats: dict[str, np.ndarray]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    with FeatWriter(d / "feats.ark", d / "feats.scp") as w:
        for u, m in mats.items():
            w.write(u, m)
    (d / "utt2num_frames").write_text("".join(f"{u} {m.shape[0]}\n" for u, m in mats.items()))


def _clean_mels(n: int, rng: np.random.Generator, flat: bool = False) -> dict[str, np.ndarray]:
    """Log-mels with a spectral tilt and a level varying per utterance and frame (flat: -6 + noise)."""
    tilt = np.full(80, -6.0, np.float32) if flat else np.linspace(-5, -10, 80, dtype=np.float32)
    out = {}
    for i in range(n):
        t = int(rng.integers(40, 90))
        level = 0.0 if flat else rng.uniform(-2, 2) + np.sin(np.arange(t) / rng.uniform(3, 8))[:, None]
        out[f"u{i:02d}"] = (tilt + level + rng.normal(0, 0.2, (t, 80))).astype(np.float32)
    return out


def feat_data(root: Path, cond: str, degrade, *, n: int = 12, masks: bool = False, cond2: str | None = None,
              flat: bool = False) -> FrontendData:
    """dump/feats/{train,dev}[_<cond>] + data/{train,dev}_<cond>; degraded = degrade(clean, rng)."""
    rng = np.random.default_rng(0)
    dirs: dict[str, list] = {k: [] for k in ("tf", "tc", "vf", "vc", "td", "vd")}
    for split, nn in (("train", n), ("dev", 4)):
        clean = _clean_mels(nn, rng, flat)
        _write_feats(root / "feats" / split, clean)
        for c in [cond] + ([cond2] if cond2 else []):
            deg, stft_masks = {}, {}
            for u, m in clean.items():
                deg[u], stft_masks[u] = degrade(m, rng)
            fd, dd = root / "feats" / f"{split}_{c}", root / "data" / f"{split}_{c}"
            _write_feats(fd, deg)
            dd.mkdir(parents=True, exist_ok=True)
            if masks:
                lines = []
                for u, sm in stft_masks.items():
                    np.save(dd / f"{u}.holes_mask.npy", sm)
                    lines.append(f"{u} {dd / f'{u}.holes_mask.npy'}\n")
                (dd / "holes_mask.scp").write_text("".join(lines))
            k = "t" if split == "train" else "v"
            dirs[k + "f"].append(fd)
            dirs[k + "c"].append(root / "feats" / split)
            dirs[k + "d"].append(dd)
    return FrontendData(train_feats=dirs["tf"], train_clean_feats=dirs["tc"], valid_feats=dirs["vf"],
                        valid_clean_feats=dirs["vc"], train_data_dirs=dirs["td"], valid_data_dirs=dirs["vd"])


def wave_data(root: Path, cond: str, *, n: int = 10) -> FrontendData:
    """data/{train,dev}_<cond> with wav.scp (degraded = 2 x clean + a little noise), clean.scp, utt2dur."""
    rng = np.random.default_rng(1)
    tf, td, vf, vd = [], [], [], []
    for split, nn in (("train", n), ("dev", 3)):
        d = root / "data" / f"{split}_{cond}"
        (d / "wav").mkdir(parents=True, exist_ok=True)
        wav, cl, dur = [], [], []
        for i in range(nn):
            t = np.arange(int(rng.integers(6000, 14000))) / 16000
            f0 = rng.uniform(100, 300)
            clean = sum(0.05 / h * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) for h in range(1, 12))
            clean = (clean * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
            noisy = (2 * clean + 0.003 * rng.normal(size=len(t))).astype(np.float32)
            sf.write(d / "wav" / f"c{i}.wav", clean, 16000, subtype="FLOAT")
            sf.write(d / "wav" / f"n{i}.wav", noisy, 16000, subtype="FLOAT")
            wav.append(f"u{i:02d} {d / 'wav' / f'n{i}.wav'}\n")
            cl.append(f"u{i:02d} {d / 'wav' / f'c{i}.wav'}\n")
            dur.append(f"u{i:02d} {len(t) / 16000:.4f}\n")
        (d / "wav.scp").write_text("".join(wav))
        (d / "clean.scp").write_text("".join(cl))
        (d / "utt2dur").write_text("".join(dur))
        (tf if split == "train" else vf).append(root / "feats" / f"{split}_{cond}")
        (td if split == "train" else vd).append(d)
    return FrontendData(train_feats=tf, train_clean_feats=[root / "feats" / "train"], valid_feats=vf,
                        valid_clean_feats=[root / "feats" / "dev"], train_data_dirs=td, valid_data_dirs=vd)


def tiny_cfg(model: dict, steps: int, **over) -> dict:
    cfg = {
        "model": model,
        "data": {"max_frames": 60, "batch_size": 4, "batch_max_frames": 400, "num_val_utts": 4},
        "train": {"lr": 3e-3, "warmup_steps": 3, "max_steps": steps, "val_every_steps": 10,
                  "ckpt_every_steps": 10, "log_every_steps": 1, "num_threads": 1, "accelerator": "cpu"},
    }
    for k, v in over.items():
        cfg[k] = v
    return cfg


def train_losses(exp: Path) -> list[float]:
    rows = []
    for f in sorted((exp / "logs").rglob("metrics.csv")):
        with open(f) as fh:
            rows += [r for r in csv.DictReader(fh) if r.get("train_loss")]
    return [float(r["train_loss"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def _decreases(losses: list[float], factor: float) -> None:
    assert len(losses) >= 20, losses
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"loss {first:.4f} -> {last:.4f} ({last / first:.2f})")
    assert last < factor * first, (first, last, losses)


def test_bwe_trains_resumes_and_loads(tmp_path):
    def degrade(m, rng):  # band-limited at band 40; the clean upper bands are the known ones shifted
        d = m.copy()
        d[:, 40:] = LOG_FLOOR
        return d, None

    data = feat_data(tmp_path, "bandlimit_2k", degrade)
    model = {"hidden": 32, "dilations": [1, 2], "cutoff_hz": None}
    exp = tmp_path / "exp" / "frontend_bwe"
    aug = {"cutoff_prob": 0.3, "cutoffs_hz": [1000, 4000], "jitter_bands": 1}
    out = train_frontend("bwe", tiny_cfg(model, 30, augment=aug), data, exp)
    _decreases(train_losses(exp), 0.7)
    info = json.loads((exp / "train_info.json").read_text())
    assert info["steps"] == 30 and info["conditions"] == ["bandlimit_*"] and np.isfinite(info["val_loss"])
    assert (exp / "checkpoints" / "last.ckpt").is_file()
    fe = load(out)
    x = torch.full((1, 80, 20), -8.0)
    x[:, 40:] = LOG_FLOOR
    y, yl = fe.enhance(x, torch.tensor([20]))
    assert y.shape == x.shape and torch.equal(y[:, :38], x[:, :38]) and (y[:, 45:] > LOG_FLOOR + 2).all()
    # resume: the step counter continues from the checkpoint
    out = train_frontend("bwe", tiny_cfg(model, 36, augment=aug), data, exp)
    assert json.loads((exp / "train_info.json").read_text())["steps"] == 36
    load(out)


def test_inpaint_oracle_trains(tmp_path):
    fb = mel_filterbank(FeatureConfig())

    def degrade(m, rng):  # holes: blocks of frames x STFT bins; the degraded log-mel there is -15
        t = m.shape[0]
        sm = np.zeros((257, t + 1), dtype=bool)
        for _ in range(2):
            t0, f0 = int(rng.integers(0, t - 15)), int(rng.integers(0, 200))
            sm[f0 : f0 + 60, t0 : t0 + 15] = True
        d = m.copy()
        d[stft_mask_to_mel(sm, fb).numpy()[:, :t].T] = -15.0
        return d, sm

    data = feat_data(tmp_path, "holes30", degrade, masks=True, flat=True)
    exp = tmp_path / "exp" / "frontend_inpaint"
    out = train_frontend("inpaint", tiny_cfg({"channels": [8, 16], "oracle_mask": True}, 30), data, exp)
    _decreases(train_losses(exp), 0.6)
    fe = load(out)
    assert fe.needs_mask


def test_inpaint_blind_trains_on_selected_conditions(tmp_path):
    data = feat_data(tmp_path, "holes30", lambda m, rng: (m - 1.0, None), cond2="noise_5db")
    exp = tmp_path / "exp" / "frontend_inpaint"
    cfg = tiny_cfg({"channels": [8, 16]}, 30, conditions=["holes*"])
    train_frontend("inpaint", cfg, data, exp)
    _decreases(train_losses(exp), 0.5)
    info = json.loads((exp / "train_info.json").read_text())
    assert info["train_items"] == 12  # only the holes dir, not noise_5db


def test_mask_trains(tmp_path):
    data = wave_data(tmp_path, "noise_5db")
    exp = tmp_path / "exp" / "frontend_mask"
    model = {"hidden": 32, "lstm_hidden": 16, "dilations": [1, 2], "lstm_layers": 1}
    cfg = tiny_cfg(model, 30)
    cfg["train"]["lr"] = 1e-2
    out = train_frontend("mask", cfg, data, exp)
    _decreases(train_losses(exp), 0.7)
    fe = load(out)
    x, _ = sf.read(str(data.valid_data_dirs[0] / "wav" / "n0.wav"), dtype="float32")
    y, _ = fe.enhance(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    assert y.shape == (1, len(x))


def test_feat_pairs_gain_and_masks(tmp_path):
    from specenh.train.supervised import FeatPairs, collate_feat_items, select_conditions

    def degrade(m, rng):
        sm = np.zeros((257, m.shape[0] + 1), dtype=bool)
        sm[:, 5:9] = True
        return m, sm

    data = feat_data(tmp_path, "holes30", degrade, n=3, masks=True)
    dd = data.train_data_dirs[0]
    (dd / "utt2gain").write_text("u00 0.5\nu01 1.0\nu02 1.0\n")
    ds = FeatPairs(data.train_feats, data.train_clean_feats, data_dirs=[dd], with_masks=True)
    x, y, key, m = ds[0]
    assert key == "0:u00" and x.shape == y.shape == m.shape and m.dtype == bool
    guard = 2.0**-24
    np.testing.assert_allclose(y, np.log(0.25 * (np.exp(x.astype(np.float64)) - guard) + guard), rtol=1e-5, atol=1e-5)
    assert m[5:9].all() and not m[:5].any() and not m[9:].any()
    np.testing.assert_array_equal(ds[1][0], ds[1][1])  # gain 1: the target is the clean features
    b = collate_feat_items([ds[0], ds[1]])
    assert b["mask"].dtype == torch.bool and b["mask"].shape == b["x"].shape
    names = [Path("f/train_bandlimit_1k"), Path("f/train_noise_5db"), Path("f/train_clean_100_holes30")]
    assert select_conditions(names, ["bandlimit_*"]) == [0]
    assert select_conditions(names, ["holes*", "noise_5db"]) == [1, 2]
    assert select_conditions(names, ["bwe"]) == []


def test_no_matching_condition_is_a_clear_error(tmp_path):
    data = feat_data(tmp_path, "noise_5db", lambda m, rng: (m, None), n=4)
    with pytest.raises(ValueError, match="bandlimit"):
        train_frontend("bwe", tiny_cfg({"hidden": 8, "dilations": [1]}, 2), data, tmp_path / "exp")
