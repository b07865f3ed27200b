"""StyleGAN enhancer training (specenh.train.gan): a few steps on tiny synthetic feature dirs, paired and
unpaired, contextual loss on a tiny random frozen ASR and on log-mel patches; resume; model.pt loads."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from specenh.features.io import FeatWriter
from specenh.frontends import load
from specenh.train import FrontendData, train_frontend

REPO = Path(__file__).resolve().parents[1]
WORDS = "the old farmer carried seven heavy baskets to market before noon".split()


def _write_set(d: Path, mats: dict[str, np.ndarray], texts: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    with FeatWriter(d / "feats.ark", d / "feats.scp") as w:
        for u, m in mats.items():
            w.write(u, m)
    (d / "utt2num_frames").write_text("".join(f"{u} {m.shape[0]}\n" for u, m in mats.items()))
    (d / "text").write_text("".join(f"{u} {texts[u]}\n" for u in mats))


@pytest.fixture(scope="module")
def feats_root(tmp_path_factory) -> Path:
    """dump/feats-like tree: train, train_noise, dev, dev_noise (log-mel-like values, [T, 80])."""
    root = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    for s, n in (("train", 10), ("dev", 4)):
        clean, noisy, texts = {}, {}, {}
        for i in range(n):
            t = int(rng.integers(40, 90))
            base = -10 + 3 * np.sin(np.arange(t)[:, None] / 5.0 + np.arange(80)[None, :] / 9.0 + i)
            c = (base + 0.3 * rng.standard_normal((t, 80))).astype(np.float32)
            clean[f"u{s}{i}"] = c
            noisy[f"u{s}{i}"] = np.logaddexp(c, -7 + rng.standard_normal((t, 80))).astype(np.float32)
            texts[f"u{s}{i}"] = " ".join(rng.choice(WORDS, size=4))
        _write_set(root / s, clean, texts)
        _write_set(root / f"{s}_noise", noisy, texts)
    return root


@pytest.fixture(scope="module")
def tiny_nemo(tmp_path_factory) -> Path:
    """A random tiny Conformer-CTC saved as .nemo (the frozen ASR of the contextual loss)."""
    from specenh.asr.train import build_model, train_tokenizer
    from specenh.utils.config import load_yaml

    d = tmp_path_factory.mktemp("asr")
    rng = np.random.default_rng(0)
    tok = train_tokenizer([" ".join(rng.choice(WORDS, size=6)) for _ in range(100)], d / "tok", vocab_size=30)
    cfg = load_yaml(REPO / "conf" / "asr" / "conformer_ctc_mini.yaml")["model"]
    cfg["encoder"].update(n_layers=2, d_model=16, n_heads=2, subsampling_conv_channels=16)
    cfg["decoder"]["feat_in"] = 16
    torch.manual_seed(0)
    model = build_model(cfg, tok)
    path = d / "tiny.nemo"
    model.save_to(str(path))
    return path


def _data(root: Path, asr: Path | None) -> FrontendData:
    return FrontendData(train_feats=[root / "train_noise"], train_clean_feats=[root / "train"],
                        valid_feats=[root / "dev_noise"], valid_clean_feats=[root / "dev"],
                        asr_model=str(asr) if asr else None)


def _cfg(**train) -> dict:
    return {
        "model": {"latent_dim": 16, "style_depth": 1, "capacity": 2, "fmap_max": 8, "psi": 0.7},
        "disc": {"capacity": 1, "fmap_max": 8},
        "loss": {"cx_source": "asr", "cx_layers": [0, -1], "cx_max_positions": 16, "fm_weight": 0.5, "r1_every": 2},
        "train": {"crop_frames": 48, "batch_size": 4, "batch_max_frames": 10000, "max_steps": 3,
                  "val_every_steps": 2, "ckpt_every_steps": 2, "num_val_utts": 4, "image_every_steps": 2,
                  "log_every_steps": 1, "progress_bar": False, "num_threads": 1, **train},
    }


def _check_model(path: Path, root: Path) -> None:
    fe = load(path)
    assert fe.name == "stylegan" and not fe.training
    assert fe.mapping.w_avg.abs().sum() > 0  # the running mean was tracked and saved
    x = torch.randn(2, 80, 37) - 9
    y, yl = fe.enhance(x, torch.tensor([37, 20]))
    assert y.shape == x.shape and torch.isfinite(y).all() and torch.all(y[1, :, 20:] == 0)


def test_train_paired_asr_cx_and_resume(feats_root, tiny_nemo, tmp_path):
    exp = tmp_path / "exp"
    out = train_frontend("stylegan", _cfg(), _data(feats_root, tiny_nemo), exp)
    assert out == exp / "model.pt" and out.is_file()
    assert (exp / "checkpoints" / "last.ckpt").is_file() and (exp / "config.yaml").is_file()
    info = json.loads((exp / "train_info.json").read_text())
    assert info["steps"] == 3
    m = info["metrics"]
    for k in ("train/d_loss", "train/g_adv", "train/cx", "train/fm", "train/consistency", "val/l1_enhanced",
              "val/cx_enhanced", "val/fm_enhanced", "val/fm_input"):
        assert k in m and np.isfinite(m[k]), k
    assert m["val/fm_input"] > 0  # the degraded input's ASR features differ from the clean ones
    assert m["train/cx"] > 0
    assert list((exp / "tb").rglob("events.out.tfevents.*")), "TensorBoard events written"
    _check_model(out, feats_root)
    w_avg_before = load(out).mapping.w_avg.clone()
    # resume: two more steps on top of the saved three
    out2 = train_frontend("stylegan", _cfg(max_steps=5), _data(feats_root, tiny_nemo), exp)
    info2 = json.loads((exp / "train_info.json").read_text())
    assert info2["steps"] == 5
    assert not torch.equal(load(out2).mapping.w_avg, w_avg_before)


def test_train_unpaired_mel_cx(feats_root, tmp_path, caplog):
    cfg = _cfg(unpaired=True, progress_bar=True)
    cfg["loss"].update(cx_source="mel", fm_weight=0.0, cx_patch_frames=3)
    exp = tmp_path / "exp"
    with caplog.at_level("INFO", logger="specenh.train"):
        out = train_frontend("stylegan", cfg, _data(feats_root, None), exp)  # no ASR needed
    # stderr is not a terminal here: log lines instead of a progress bar
    assert any(r.getMessage().startswith("step 1/3: d_loss") for r in caplog.records)
    info = json.loads((exp / "train_info.json").read_text())
    assert info["unpaired"] and info["steps"] == 3 and info["metrics"]["train/cx"] > 0
    _check_model(out, feats_root)


def test_select_best_generator_by_validation(feats_root, tmp_path):
    """train.select_by: model.pt is the generator at its best validation value, which survives a resume."""
    cfg = _cfg(max_steps=6, val_every_steps=2, select_by="val/l1_enhanced")
    cfg["loss"].update(cx_source="mel", fm_weight=0.0, cx_patch_frames=3)
    cfg["train"]["lr_g"] = 5e-2  # large steps: validation values differ from one check to the next
    exp = tmp_path / "exp"
    out = train_frontend("stylegan", cfg, _data(feats_root, None), exp)
    info = json.loads((exp / "train_info.json").read_text())
    sel = info["selected"]
    assert sel["by"] == "val/l1_enhanced" and sel["step"] in (2, 4, 6)
    import csv

    rows = list(csv.DictReader(open(next((exp / "logs").rglob("metrics.csv")))))
    vals = [float(r["val/l1_enhanced"]) for r in rows if r.get("val/l1_enhanced")]
    assert len(vals) == 3 and sel["value"] == pytest.approx(min(vals), rel=1e-4)
    ck = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    best = ck["specenh_harness"]["best_state"]
    saved = load(out).state_dict()
    assert all(torch.equal(saved[k], best[k]) for k in best)  # model.pt holds the selected weights
    bad = _cfg(max_steps=2, val_every_steps=2, select_by="val/nope")
    bad["loss"].update(cx_source="mel", fm_weight=0.0, cx_patch_frames=3)
    with pytest.raises(KeyError, match="val/nope"):
        train_frontend("stylegan", bad, _data(feats_root, None), tmp_path / "bad")


def test_asr_loss_without_asr_is_an_error(feats_root, tmp_path):
    with pytest.raises(ValueError, match="asr"):
        train_frontend("stylegan", _cfg(), _data(feats_root, None), tmp_path / "exp")
    with pytest.raises(ValueError, match="unknown"):
        train_frontend("stylegan", _cfg(no_such_key=1), _data(feats_root, None), tmp_path / "exp2")


DDP_SCRIPT = """
import json, sys
from pathlib import Path
from specenh.train import FrontendData, train_frontend
cfg, root, exp = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
data = FrontendData(train_feats=[root / "train_noise"], train_clean_feats=[root / "train"],
                    valid_feats=[root / "dev_noise"], valid_clean_feats=[root / "dev"])
train_frontend("stylegan", cfg, data, exp)
"""


@pytest.mark.slow
def test_ddp_two_cpu_processes(feats_root, tmp_path):
    """Two DDP ranks on CPU (gloo): G and D take turns, R1 included; every rank gets its own batches."""
    cfg = _cfg(accelerator="cpu", devices=2, max_steps=4, batch_size=2)
    cfg["loss"].update(cx_source="mel", fm_weight=0.0)
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    exp = tmp_path / "exp"
    r = subprocess.run([sys.executable, str(script), json.dumps(cfg), str(feats_root), str(exp)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((exp / "train_info.json").read_text())
    assert info["steps"] == 4
    load(exp / "model.pt")


def test_consistency_target(feats_root, tmp_path):
    """loss.consistency_target: the paper anchors the output's coarse bands to the degraded input; 'clean'
    (paired only) anchors them to the clean utterance; unpaired training always uses the input."""
    from specenh.train.gan import StyleGANModule, resolve_config

    x, y = torch.rand(2, 1, 80, 10), torch.rand(2, 1, 80, 10)
    for target, unpaired, want in (("input", False, x), ("clean", False, y), ("clean", True, x)):
        cfg = _cfg(unpaired=unpaired)
        cfg["loss"].update(consistency_target=target)
        mod = StyleGANModule(resolve_config(cfg), _data(feats_root, None))
        assert mod.consistency_reference(x, y) is want, (target, unpaired)
    bad = _cfg()
    bad["loss"].update(consistency_target="nope")
    with pytest.raises(ValueError, match="consistency_target"):
        resolve_config(bad)
    # a short paired run with the clean target trains and logs its consistency term
    cfg = _cfg(max_steps=2)
    cfg["loss"].update(cx_source="mel", fm_weight=0.0, cx_patch_frames=3, consistency_target="clean")
    train_frontend("stylegan", cfg, _data(feats_root, None), tmp_path / "exp")
    m = json.loads((tmp_path / "exp" / "train_info.json").read_text())["metrics"]
    assert np.isfinite(m["train/consistency"]) and m["train/consistency"] > 0


def test_condition_weights_repeat_matching_pairs():
    from specenh.train.gan import weight_conditions

    deg = [Path("f/train_noise_5db"), Path("f/train_holes30"), Path("f/train")]
    clean = [Path("f/train")] * 3
    d, c = weight_conditions(deg, clean, {"noise_*": 3, "*": 2})  # first matching pattern wins
    assert [p.name for p in d] == ["train_noise_5db"] * 3 + ["train_holes30"] * 2 + ["train"] * 2
    assert len(c) == len(d) and all(p.name == "train" for p in c)
    d, _ = weight_conditions(deg, clean, {"holes30": 0})  # a condition can be left out
    assert [p.name for p in d] == ["train_noise_5db", "train"]
    assert weight_conditions(deg, clean, {})[0] == deg
    with pytest.raises(ValueError, match="integer"):
        weight_conditions(deg, clean, {"noise_*": 1.5})
    with pytest.raises(ValueError, match="integer"):
        weight_conditions(deg, clean, {"noise_*": None})  # e.g. "{noise_*:3}" parses as a key with no value
    with pytest.raises(ValueError, match="leave no"):
        weight_conditions(deg, clean, {"*": 0})


def test_restrict_conditions_keeps_pairs_aligned():
    from specenh.train.gan import restrict_conditions

    f = Path("dump/feats")
    data = FrontendData(train_feats=[f / "train_noise_5db", f / "train_holes30", f / "train_noise_0db"],
                        train_clean_feats=[f / "train"] * 3,
                        valid_feats=[f / "dev_noise_5db", f / "dev_holes30"], valid_clean_feats=[f / "dev"] * 2)
    out = restrict_conditions(data, ["noise_*"])
    assert [p.name for p in out.train_feats] == ["train_noise_5db", "train_noise_0db"]
    assert [p.name for p in out.train_clean_feats] == ["train", "train"]
    assert [p.name for p in out.valid_feats] == ["dev_noise_5db"] and len(out.valid_clean_feats) == 1
    assert restrict_conditions(data, "*").train_feats == data.train_feats
    assert restrict_conditions(data, ["train_holes30"]).valid_feats == []  # whole names match too
    with pytest.raises(ValueError, match="matches conditions"):
        restrict_conditions(data, ["reverb"])


def test_frozen_asr_ctc_loss_batched_equals_alone_and_reaches_the_input(tiny_nemo):
    """The CTC loss of a padded batch equals the mean of the utterances' losses computed alone; its
    gradient reaches the features, never the frozen weights."""
    from specenh.asr.base import load_asr

    asr = load_asr(str(tiny_nemo))
    torch.manual_seed(0)
    lens = torch.tensor([60, 44])
    x = (torch.randn(2, 80, 60) - 9).requires_grad_(True)
    targets = asr.tokenize(["the old farmer", "seven heavy baskets to market"])
    assert all(len(t) > 0 for t in targets)
    feats, flen, enc = asr.encoder_features(x, lens, [], return_encoded=True)
    assert feats == [] and enc.shape[0] == 2 and flen.tolist()[0] > flen.tolist()[1]
    loss = asr.asr_loss(enc, flen, targets)
    alone = []
    for i in range(2):
        _, fl, e = asr.encoder_features(x[i:i + 1, :, : lens[i]].detach(), lens[i:i + 1], [], return_encoded=True)
        alone.append(float(asr.asr_loss(e, fl, targets[i:i + 1])))
    assert float(loss) > 0 and abs(float(loss) - np.mean(alone)) < 1e-4 * max(1.0, float(loss))
    loss.backward()
    assert x.grad is not None and x.grad[0].abs().sum() > 0 and torch.all(x.grad[1, :, 44:] == 0)
    assert all(p.grad is None for p in asr.model.parameters())


def test_train_with_ctc_loss(feats_root, tiny_nemo, tmp_path):
    cfg = _cfg(crop_frames=None, max_steps=2)
    cfg["loss"]["ctc_weight"] = 0.5
    exp = tmp_path / "exp"
    out = train_frontend("stylegan", cfg, _data(feats_root, tiny_nemo), exp)
    m = json.loads((exp / "train_info.json").read_text())["metrics"]
    assert np.isfinite(m["train/ctc"]) and m["train/ctc"] > 0 and m["train/fm"] > 0
    _check_model(out, feats_root)
    # a crop has no transcript of its own: refused before any training
    with pytest.raises(ValueError, match="crop_frames"):
        train_frontend("stylegan", {**cfg, "train": {**cfg["train"], "crop_frames": 48}},
                       _data(feats_root, tiny_nemo), tmp_path / "exp2")
