"""The trainable baselines mask / inpaint / bwe: shapes, lengths, batch consistency, save/load,
STFT round trip, mel hole masks, band copying and cut-off estimation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from specenh.frontends import build, load
from specenh.frontends.bwe import (LOG_FLOOR, cutoff_hz_to_band, estimate_cutoff_band, mel_band_edges,
                                   simulate_bandlimit)
from specenh.frontends.inpaint import load_mel_masks, pad_mel_masks, stft_mask_to_mel



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread (on a shared, oversubscribed CPU two threads can be 100x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


MEL_LENS = torch.tensor([37, 50, 9])
WAVE_LENS = torch.tensor([8000, 5123, 1601])

CONFIGS = {
    "mask": {"name": "mask", "hidden": 24, "lstm_hidden": 16, "dilations": [1, 2], "lstm_layers": 1},
    "mask_causal_complex": {"name": "mask", "hidden": 24, "lstm_hidden": 16, "dilations": [1, 2], "causal": True,
                            "mask_type": "complex", "mask_bound": 1.5},
    "inpaint": {"name": "inpaint", "channels": [8, 16, 16]},
    "inpaint_oracle": {"name": "inpaint", "channels": [8, 16], "oracle_mask": True},
    "bwe": {"name": "bwe", "hidden": 32, "dilations": [1, 2]},
    "bwe_attn": {"name": "bwe", "hidden": 32, "dilations": [1], "attn_layers": 1, "attn_heads": 2},
}


def _randomise(fe: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Non-trivial weights (the default init starts close to the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in fe.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _inputs(fe, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if fe.domain == "wave":
        lens = WAVE_LENS
        x = 0.1 * torch.randn(len(lens), int(lens.max()), generator=g)
    else:
        lens = MEL_LENS
        x = -8 + 3 * torch.randn(len(lens), 80, int(lens.max()), generator=g)
        x[0, 50:] = LOG_FLOOR  # a band-limited item for bwe
    valid = torch.arange(x.shape[-1])[None, :] < lens[:, None]
    x = x * (valid[:, None, :] if x.dim() == 3 else valid)
    kw = {}
    if getattr(fe, "needs_mask", False):
        kw["mask"] = torch.rand(len(lens), 80, x.shape[-1], generator=g) > 0.7
    return x, lens, kw


def _item_kw(kw, i, n):
    return {k: v[i : i + 1, ..., :n] for k, v in kw.items()}


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_shapes_lengths_batch_consistency(key):
    fe = build(CONFIGS[key])
    assert fe.trainable
    _randomise(fe)
    x, lens, kw = _inputs(fe)
    y, yl = fe.enhance(x, lens, **kw)
    assert y.shape == x.shape and torch.equal(yl, lens)
    assert torch.isfinite(y).all()
    for i, n in enumerate(lens.tolist()):
        assert torch.all(y[i, ..., n:] == 0), "padding must be zero"
        yi, yli = fe.enhance(x[i : i + 1, ..., :n], lens[i : i + 1], **_item_kw(kw, i, n))
        assert yi.shape[-1] == n and int(yli) == n
        torch.testing.assert_close(yi[0], y[i, ..., :n], atol=1e-4, rtol=0)
    # the output is not a trivial copy of the input
    assert not torch.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize("key", ["mask", "inpaint_oracle", "bwe"])
def test_save_load_identical(tmp_path, key):
    fe = build(CONFIGS[key])
    _randomise(fe, 1)
    p = tmp_path / "model.pt"
    fe.save(p)
    fe2 = load(p)
    assert type(fe2) is type(fe) and fe2.config == fe.config
    x, lens, kw = _inputs(fe, 2)
    assert torch.equal(fe.enhance(x, lens, **kw)[0], fe2.enhance(x, lens, **kw)[0])


# ---------------------------------------------------------------------------- mask
def test_mask_all_ones_is_stft_roundtrip():
    fe = build(CONFIGS["mask"])
    x, lens, _ = _inputs(fe, 3)
    spec, frames = fe.stft(x, lens)
    assert spec.shape[1] == 257 and spec.shape[2] == 1 + x.shape[1] // 160
    assert torch.equal(frames, 1 + lens // 160)
    y = fe.apply_mask(x, lens, torch.ones(spec.shape))
    assert (y - x).abs().max() < 1e-4
    y0 = fe.apply_mask(x, lens, torch.zeros(spec.shape))
    assert y0.abs().max() == 0


def test_mask_untrained_is_near_scaled_identity():
    fe = build({"name": "mask", "hidden": 16, "lstm_hidden": 8, "dilations": [1], "init_mask": 0.9})
    x, lens, _ = _inputs(fe, 4)
    y, _ = fe.enhance(x, lens)
    rel = (y - 0.9 * x).norm() / (0.9 * x).norm()
    assert rel < 0.1


def test_mask_causal_ignores_the_future():
    fe = build(CONFIGS["mask_causal_complex"])
    _randomise(fe, 5)
    x = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([8000])
    x2 = x.clone()
    x2[:, 5000:] += 0.5 * torch.randn(1, 3000, generator=torch.Generator().manual_seed(1))
    y, _ = fe.enhance(x, lens)
    y2, _ = fe.enhance(x2, lens)
    # a sample depends on frames whose windows reach at most n_fft samples past it
    assert torch.allclose(y[:, : 5000 - 512], y2[:, : 5000 - 512], atol=1e-6)
    assert not torch.allclose(y[:, 5000:], y2[:, 5000:])
    nc = build(CONFIGS["mask"])
    _randomise(nc, 5)
    a, _ = nc.enhance(x, lens)
    b, _ = nc.enhance(x2, lens)
    assert not torch.allclose(a[:, :4000], b[:, :4000], atol=1e-6)  # the BLSTM looks ahead


def test_mask_loss_zero_for_clean_and_positive_otherwise():
    fe = build(CONFIGS["mask"])
    x, lens, _ = _inputs(fe, 6)
    z = fe.loss(x, x, lens)
    assert z["loss"] < 1e-8
    o = fe.loss(0.5 * x, x, lens)
    assert o["mag"] > 0 and o["complex"] > 0
    torch.testing.assert_close(o["loss"], 0.887 * o["mag"] + 0.113 * o["complex"])


# ---------------------------------------------------------------------------- inpaint
def test_stft_mask_to_mel_known_masks():
    from specenh.features.logmel import FeatureConfig, mel_filterbank

    fb = mel_filterbank(FeatureConfig())
    t = 6
    m = np.zeros((257, t), dtype=bool)
    assert not stft_mask_to_mel(m, fb).any()
    m[:, 1] = True  # a whole frame removed -> every band of that frame
    m[:128, 3] = True  # bins below 4 kHz (bin 128 = 4000 Hz) removed in frame 3
    mel = stft_mask_to_mel(m, fb)
    assert mel.shape == (80, t) and mel.dtype == torch.bool
    assert mel[:, 1].all() and not mel[:, [0, 2, 4, 5]].any()
    upper = torch.tensor(mel_band_edges()[:, 1])
    lower = torch.tensor(mel_band_edges()[:, 0])
    assert mel[upper <= 3990, 3].all()  # bands entirely below 4 kHz are missing
    assert not mel[lower >= 4000, 3].any()  # bands entirely above are kept
    # the 0.5 rule on one band: mask exactly the bins carrying most of band 40's weight
    b = 40
    w = fb[b].numpy()
    order = np.argsort(-w)
    k = int(np.searchsorted(np.cumsum(w[order]) / w.sum(), 0.6)) + 1
    m2 = np.zeros((257, 1), dtype=bool)
    m2[order[:k], 0] = True
    assert stft_mask_to_mel(m2, fb)[b, 0]
    m3 = np.zeros((257, 1), dtype=bool)
    m3[order[-1], 0] = True  # the band's smallest-weight bin alone: < 50 %
    assert not stft_mask_to_mel(m3, fb)[b, 0]
    with pytest.raises(ValueError):
        stft_mask_to_mel(np.zeros((80, 3), bool), fb)


def test_load_mel_masks(tmp_path):
    d = tmp_path / "data" / "test_holes30"
    d.mkdir(parents=True)
    m = np.zeros((257, 11), dtype=bool)
    m[:, 2:4] = True
    (tmp_path / "dump").mkdir()
    np.save(tmp_path / "dump" / "u1.npy", m)  # relative to the recipe root
    np.save(d / "u2.npy", m[:, :5])
    (d / "holes_mask.scp").write_text(f"u1 dump/u1.npy\nu2 {d / 'u2.npy'}\n")
    a, b = load_mel_masks(d, ["u1", "u2"], {"u1": 10, "u2": 7})
    assert a.shape == (80, 10) and b.shape == (80, 7)
    assert a[:, 2:4].all() and not a[:, 4:].any() and not b[:, 5:].any()
    batch = pad_mel_masks([a, b])
    assert batch.shape == (2, 80, 10) and batch.dtype == torch.bool and not batch[1, :, 7:].any()
    with pytest.raises(KeyError):
        load_mel_masks(d, ["nope"])
    with pytest.raises(FileNotFoundError):
        load_mel_masks(tmp_path, ["u1"])


def test_inpaint_oracle_keeps_unmasked_input():
    fe = build(CONFIGS["inpaint_oracle"])
    _randomise(fe, 7)
    x, lens, kw = _inputs(fe, 8)
    y, _ = fe.enhance(x, lens, **kw)
    valid = (torch.arange(x.shape[-1])[None, None, :] < lens[:, None, None]).expand_as(x)
    keep = valid & ~kw["mask"]
    assert torch.equal(y[keep], x[keep])
    assert not torch.allclose(y[valid & kw["mask"]], x[valid & kw["mask"]])
    with pytest.raises(ValueError, match="mask"):
        fe.enhance(x, lens)


def test_inpaint_untrained_is_near_identity():
    fe = build({"name": "inpaint", "channels": [8, 16]})
    x, lens, _ = _inputs(fe, 9)
    y, _ = fe.enhance(x, lens)
    assert (y - x).abs().max() < 0.5


# ---------------------------------------------------------------------------- bwe
def test_cutoff_hz_to_band():
    edges = mel_band_edges()
    assert edges.shape == (80, 2) and edges[-1, 1] == pytest.approx(8000)
    for hz in (1000, 2000, 4000):
        k = cutoff_hz_to_band(hz)
        assert edges[k - 1, 1] <= hz < edges[k, 1]
    assert cutoff_hz_to_band(8000) == 80


def _speechlike(b: int, t: int, seed: int) -> torch.Tensor:
    """Log-mels with a spectral tilt, loud and quiet frames, well above the floor."""
    g = torch.Generator().manual_seed(seed)
    tilt = torch.linspace(-5, -10, 80)[None, :, None]
    loud = torch.where(torch.rand(b, 1, t, generator=g) > 0.4, 0.0, -4.0)
    return tilt + loud + torch.randn(b, 80, t, generator=g)


def test_estimate_cutoff_band_synthetic():
    lens = torch.tensor([120, 90, 60, 100])
    x = _speechlike(4, 120, 0)
    bands = torch.tensor([25, 43, 61, 80])
    xb = simulate_bandlimit(x, bands)
    xb = xb + 0.05 * torch.rand(xb.shape)  # resampler residue just above the floor
    xb = xb * (torch.arange(120)[None, None, :] < lens[:, None, None])
    k = estimate_cutoff_band(xb, lens)
    assert k.tolist() == bands.tolist()
    # full-band input, including a quiet utterance: no cut-off
    assert estimate_cutoff_band(x - 3.0, torch.full((4,), 120)).tolist() == [80] * 4
    # padding does not change the estimate
    for i in range(4):
        n = int(lens[i])
        assert int(estimate_cutoff_band(xb[i : i + 1, :, :n], lens[i : i + 1])) == int(k[i])


def test_bwe_keeps_low_bands_exactly():
    fe = build(CONFIGS["bwe"])
    _randomise(fe, 10)
    x = simulate_bandlimit(_speechlike(3, 40, 1), torch.tensor([43, 25, 61]))
    lens = torch.tensor([40, 33, 21])
    x = x * (torch.arange(40)[None, None, :] < lens[:, None, None])
    y, _ = fe.enhance(x, lens)
    k = fe.cutoff_bands(x, lens)
    assert k.tolist() == [43 - 2, 25 - 2, 61 - 2]  # estimate minus guard_bands
    for i in range(3):
        n, kb = int(lens[i]), int(k[i])
        assert torch.equal(y[i, :kb, :n], x[i, :kb, :n])
        assert (y[i, kb:, :n] - x[i, kb:, :n]).abs().mean() > 0.1  # upper bands predicted
    # fixed cut-off from the config, and an explicit per-call band
    fixed = build({**CONFIGS["bwe"], "cutoff_hz": 2000})
    assert fixed.cutoff_bands(x, lens).tolist() == [cutoff_hz_to_band(2000)] * 3
    yk, _ = fe.enhance(x, lens, cutoff_band=30)
    assert torch.equal(yk[:, :30], x[:, :30])
    # full-band input passes through unchanged
    full = _speechlike(2, 30, 2)
    yf, _ = fe.enhance(full, torch.tensor([30, 30]))
    assert torch.equal(yf, full)


def test_bwe_runs_its_network_only_on_band_limited_utterances(monkeypatch):
    """At inference the network sees only the utterances with a cut-off below the top band, cut to their longest;
    full-band ones are copied. The output equals the whole batch through the network (training mode's path)."""
    fe = build(CONFIGS["bwe"])
    _randomise(fe, 11)
    full = _speechlike(4, 50, 3)
    x = torch.stack([full[0], simulate_bandlimit(full[1:2], torch.tensor([30]))[0], full[2],
                     simulate_bandlimit(full[3:4], torch.tensor([45]))[0]])
    lens = torch.tensor([50, 24, 37, 30])
    x = x * (torch.arange(50)[None, None, :] < lens[:, None, None])
    seen = []
    real = type(fe)._extend
    monkeypatch.setattr(type(fe), "_extend", lambda self, xs, ls, k: seen.append(tuple(xs.shape)) or real(self, xs, ls, k))
    y, _ = fe.enhance(x, lens)
    assert seen == [(2, 80, 30)]  # utterances 1 and 3, padded to 30 frames
    assert torch.equal(y[[0, 2]], x[[0, 2]])
    fe.train()  # dropout 0: the same network, every utterance through it
    with torch.no_grad():
        y_all, _ = fe(x, lens)
    assert seen[-1] == (4, 80, 50)
    torch.testing.assert_close(y, y_all, atol=1e-5, rtol=0)
    seen.clear()
    fe.enhance(x[[0, 2]], lens[[0, 2]])
    assert seen == []  # all full-band: no network at all
