"""Classical waveform front-ends: specsub, wiener (Wiener / log-MMSE), resample, and the noise tracker."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from specenh.frontends import FrontEnd, build, resolve
from specenh.frontends.classical import (lsa_factor, noise_psd, recursive_smooth, sliding_min, stft_config)
from specenh.vocoder.framing import stft

SR = 16000



def speechlike(dur: float = 4.0, seed: int = 0) -> np.ndarray:
    """Gliding harmonic series with syllables (2 Hz) and a 0.5 s leading pause: speech-like enough
    for a noise tracker (pauses, harmonics, sparse in time-frequency)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * dur)) / SR
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.5 * t)) / SR
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 40) if k * 180 < SR / 2)
    env = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 0.7
    env[: SR // 2] = 0
    return (0.1 * x * env).astype(np.float32)


def add_white_noise(s: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(s))
    n *= np.sqrt(np.sum(s.astype(np.float64) ** 2) / np.sum(n ** 2) / 10 ** (snr_db / 10))
    return (s + n).astype(np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    ref, est = ref.astype(np.float64), est.astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2)))


def si_sdr_db(ref: np.ndarray, est: np.ndarray) -> float:
    ref, est = ref - ref.mean(), est - est.mean()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target ** 2) / np.sum((target - est) ** 2)))


CONFIGS = [{"name": "specsub"}, {"name": "wiener"}, {"name": "wiener", "gain": "log-mmse"},
           {"name": "resample", "cutoff": 4000}, {"name": "resample", "cutoff": 2000, "method": "soxr"}]


# ---------------------------------------------------------------------------------- noise tracker
def test_smoothing_and_sliding_min_match_loops():
    x = torch.rand(2, 3, 200, dtype=torch.float64)
    s = recursive_smooth(x, 0.85, init=x[..., 5])
    ref = torch.empty_like(x)
    prev = x[..., 5]
    for t in range(200):
        prev = 0.85 * prev + 0.15 * x[..., t]
        ref[..., t] = prev
    torch.testing.assert_close(s, ref)
    m = sliding_min(x, 37)
    ref = torch.stack([x[..., max(0, t - 36): t + 1].min(-1).values for t in range(200)], -1)
    assert torch.equal(m, ref)


def test_noise_tracker_unbiased_on_white_noise():
    """Stationary white noise of known PSD: the tracked PSD (bias-compensated running minimum) is
    within 1.5 dB of the truth on average after the first window (measured: 0.01 dB), and it
    ignores short speech bursts on top (a 200 ms tone 20 dB above the noise)."""
    cfg = stft_config()
    rng = np.random.default_rng(7)
    sigma = 0.01
    x = sigma * rng.standard_normal(SR * 5)
    x[SR * 3: SR * 3 + 3200] += 0.3 * np.sin(2 * np.pi * 1000 * np.arange(3200) / SR)
    spec = stft(torch.from_numpy(x)[None], cfg)
    power = spec.real.square() + spec.imag.square()
    n = noise_psd(power, cfg)
    truth = sigma ** 2 * float(torch.hann_window(400, periodic=False, dtype=torch.float64).square().sum())
    steady = n[0, 5:-5, 160:]  # after 1.6 s; DC/Nyquist and neighbours left out
    err_db = 10 * np.log10(float(steady.mean()) / truth)
    assert abs(err_db) < 1.5, err_db
    assert float(n[0, 5:-5, 310:330].mean()) < 2 * truth  # the tone burst does not leak into the estimate


def test_lsa_table_matches_scipy_exp1():
    from scipy.special import exp1

    v = np.logspace(-9, 1.8, 5000)
    np.testing.assert_allclose(lsa_factor(v), np.exp(0.5 * exp1(v)), rtol=1e-5)
    assert np.all(lsa_factor(np.array([100.0, 1e4])) == 1.0)


# -------------------------------------------------------------------------------- the front-ends
@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=["specsub", "wiener", "log-mmse"])
def test_enhancers_improve_snr_on_speechlike_plus_white_noise(cfg):
    s = speechlike()
    y = add_white_noise(s, 5.0)
    fe = build(cfg)
    out, lens = fe.enhance(torch.from_numpy(y)[None], torch.tensor([len(y)]))
    e = out[0].numpy()
    assert snr_db(s, y) == pytest.approx(5.0, abs=0.01)
    # measured: specsub +5.6 dB SNR / +6.4 dB SI-SDR; wiener +7.0 / +6.7; log-mmse +7.2 / +7.0
    assert snr_db(s, e) > snr_db(s, y) + 3.0
    assert si_sdr_db(s, e) > si_sdr_db(s, y) + 3.0


@pytest.mark.parametrize("cfg", CONFIGS, ids=["specsub", "wiener", "log-mmse", "resample4k", "resample2k-soxr"])
def test_shapes_lengths_batch_consistency_padding(cfg):
    fe = build(cfg)
    assert isinstance(fe, FrontEnd) and fe.domain == "wave" and not fe.trainable
    rng = np.random.default_rng(3)
    lens = [SR * 2, 23_457, 4_001]
    waves = [add_white_noise(speechlike(n / SR + 0.01, seed=i)[:n], 5.0, seed=i) for i, n in enumerate(lens)]
    x = torch.zeros(3, max(lens))
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy(w)
    x[1, lens[1]:] = torch.from_numpy(rng.standard_normal(max(lens) - lens[1]).astype(np.float32))  # junk padding
    ln = torch.tensor(lens)
    y, yl = fe.enhance(x, ln)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.equal(yl, ln)
    for i, w in enumerate(waves):
        assert torch.all(y[i, lens[i]:] == 0)
        single, sl = fe.enhance(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        assert single.shape == (1, len(w)) and int(sl[0]) == len(w)
        torch.testing.assert_close(y[i, : len(w)], single[0], atol=1e-4, rtol=0)


def test_resample_bandlimits_and_adds_nothing():
    t = np.arange(SR) / SR
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 6000 * t)
    x = torch.from_numpy((0.3 * (low + high)).astype(np.float32))[None]
    for method in ("poly", "soxr"):
        y, _ = build({"name": "resample", "cutoff": 4000, "method": method}).enhance(x, torch.tensor([SR]))
        y = y[0].numpy().astype(np.float64)[800:-800]  # away from the edges
        ref = 0.3 * low[800:-800]
        assert snr_db(ref, y) > 30, (method, snr_db(ref, y))  # 1 kHz kept, 6 kHz removed
    same, _ = build({"name": "resample", "cutoff": 8000}).enhance(x, torch.tensor([SR]))
    assert torch.equal(same, x)  # cut-off at Nyquist: nothing to do


def test_resample_estimates_the_band_edge():
    """Default resample finds each utterance's own cut-off: band-limited input keeps its band, full-band
    input passes (nearly) unchanged, and a batch mixing the two equals each utterance alone."""
    import soxr

    from specenh.frontends.classical import estimate_cutoff_hz

    def bandlimit(x, fc):  # as the bandlimit degradation does it: down and up with soxr
        return soxr.resample(soxr.resample(x, SR, 2 * fc, quality="VHQ"), 2 * fc, SR, quality="VHQ")[:SR]

    rng = np.random.default_rng(0)
    full = 0.1 * rng.standard_normal(SR).astype(np.float64)
    for fc in (1000, 2000, 4000):
        assert abs(estimate_cutoff_hz(bandlimit(full, fc), SR) - fc) <= 250, fc
    assert estimate_cutoff_hz(full, SR) == SR / 2
    lim2k = bandlimit(full, 2000).astype(np.float32)
    fe = build("resample")
    x = torch.from_numpy(np.stack([full.astype(np.float32), lim2k]))
    y, yl = fe.enhance(x, torch.tensor([SR, SR]))
    assert torch.equal(y[0], x[0])  # full band: untouched
    assert snr_db(lim2k[800:-800].astype(np.float64), y[1].numpy()[800:-800].astype(np.float64)) > 20  # poly filter transition band
    alone, _ = fe.enhance(x[1:], torch.tensor([SR]))
    torch.testing.assert_close(alone[0], y[1])


def test_registry_save_load_and_config_errors(tmp_path):
    for name in ("specsub", "wiener", "resample"):
        assert resolve(name).name == name
    fe = build({"name": "wiener", "gain": "log-mmse", "gain_floor_db": -15.0})
    fe.save(tmp_path / "w.pt")
    fe2 = resolve(tmp_path / "w.pt")
    assert fe2.config == fe.config and fe2.kind == "log-mmse"
    x = torch.from_numpy(add_white_noise(speechlike(0.5), 5.0))[None]
    torch.testing.assert_close(fe.enhance(x, torch.tensor([x.shape[1]]))[0],
                               fe2.enhance(x, torch.tensor([x.shape[1]]))[0])
    with pytest.raises(ValueError, match="gain"):
        build({"name": "wiener", "gain": "mmse-stsa-typo"})
    with pytest.raises(ValueError):
        build({"name": "specsub", "floor": 2.0})
    with pytest.raises(ValueError, match="method"):
        build({"name": "resample", "method": "interp1d"})
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        build("specsub").enhance(torch.zeros(2, 80, 10), torch.tensor([10, 10]))
