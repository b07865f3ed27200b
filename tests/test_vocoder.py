"""specenh.vocoder: STFT framing, mel inversion, GLA / FGLA / DeGLI, the learned refiner, logmel_to_wave."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from specenh.features.logmel import FeatureConfig, LogMelExtractor, mel_filterbank
from specenh.vocoder import (DeGLIDenoiser, MelRefiner, deemphasis, deep_griffin_lim, degli_loss, fast_griffin_lim,
                             griffin_lim, logmel_to_magnitude, logmel_to_wave, preemphasis, refiner_loss,
                             train_degli, train_refiner)
from specenh.vocoder.mel import logmel_to_melpower, mel_to_power, nnls_scipy
from specenh.vocoder.framing import istft, stft

CFG = FeatureConfig()
SR = 16000



def harmonic(dur: float = 1.0, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: gliding harmonic series (1/k amplitudes) with a syllabic envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * dur)) / SR
    phase = 2 * np.pi * np.cumsum(f0 + 25 * np.sin(2 * np.pi * 0.7 * t)) / SR
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 40) if k * 200 < SR / 2)
    env = 0.2 + 0.8 * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.1 * x * env).astype(np.float32)


def lj_speech(root, seconds: float = 3.0) -> np.ndarray:
    from specenh.data.audio import load_audio

    wav = sorted((root / "wavs").glob("*.wav"))[0]
    y, _ = load_audio(wav, SR)
    return y[: int(seconds * SR)]


# --------------------------------------------------------------------------------------------- STFT
def test_stft_roundtrip_and_per_utterance_masks():
    x = torch.from_numpy(np.stack([harmonic(1.0), harmonic(1.0, 120, seed=1)]))
    spec = stft(x, CFG)
    assert spec.shape == (2, 257, 1 + x.shape[1] // 160)
    torch.testing.assert_close(istft(spec, CFG, num_samples=x.shape[1]), x, atol=1e-5, rtol=0)
    # same spectrum as torch.stft with the ASR window
    ref = torch.stft(x, 512, 160, 400, window=torch.hann_window(400, periodic=False), center=True,
                     pad_mode="constant", return_complex=True)
    torch.testing.assert_close(spec, ref)
    # a modified spectrum of a short utterance padded in a batch == the same utterance alone
    lens = torch.tensor([x.shape[1], 11_237])
    gain = torch.rand(257, spec.shape[-1], generator=torch.Generator().manual_seed(0))
    sb = stft(x, CFG, lens) * gain
    yb = istft(sb, CFG, frames=1 + lens // 160, num_samples=x.shape[1], lengths=lens)
    s1 = stft(x[1:, :11_237], CFG) * gain[:, : 1 + 11_237 // 160]
    y1 = istft(s1, CFG, num_samples=11_237)
    torch.testing.assert_close(yb[1, :11_237], y1[0], atol=1e-6, rtol=0)
    assert torch.all(yb[1, 11_237:] == 0)


# ------------------------------------------------------------------------------------ GLA / FGLA
def _mag(x: np.ndarray) -> torch.Tensor:
    return stft(torch.from_numpy(x)[None], CFG).abs()


def test_fgla_with_zero_momentum_is_gla():
    x = harmonic(0.8)
    mag = torch.cat([_mag(x), _mag(x[::-1].copy())])
    frames = torch.tensor([mag.shape[-1], mag.shape[-1] - 17])
    for init in ("zero", "random"):
        a = griffin_lim(mag, 10, CFG, frames=frames, init=init, seed=3)
        b = fast_griffin_lim(mag, 10, CFG, momentum=0.0, frames=frames, init=init, seed=3)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    c = fast_griffin_lim(mag, 10, CFG, momentum=0.99, frames=frames)
    assert (c - a).abs().max() > 1e-3  # the momentum does something


def _librosa_compare(x: np.ndarray, n_iter: int):
    """Spectral convergence ||S - |STFT(x_hat)|||_F / ||S||_F of ours and of librosa.griffinlim on the
    same S, same framing (400-sample symmetric Hann in 512, hop 160, centred, zero padding), same
    init (all-ones phase: ``init=None`` in librosa, ``init="zero"`` here), same iterations, same
    momentum. The SC of both outputs is measured with librosa's STFT."""
    librosa = pytest.importorskip("librosa")
    win = scipy.signal.get_window("hann", 400, fftbins=False)
    kw = dict(n_fft=512, hop_length=160, win_length=400, window=win, center=True)
    S = np.abs(librosa.stft(x, pad_mode="constant", **kw))

    def sc(y):
        Y = np.abs(librosa.stft(y.astype(np.float32), pad_mode="constant", **kw))[:, : S.shape[1]]
        return float(np.linalg.norm(S - Y) / np.linalg.norm(S))

    out = {}
    for m in (0.0, 0.99):
        ref = librosa.griffinlim(S, n_iter=n_iter, momentum=m, init=None, pad_mode="constant", **kw)
        ours = fast_griffin_lim(torch.from_numpy(S)[None], n_iter, CFG, momentum=m, init="zero")[0].numpy()
        assert ours.shape == ref.shape
        out[m] = (sc(ours), sc(ref))
    plain = griffin_lim(torch.from_numpy(S)[None], n_iter, CFG)[0].numpy()
    out["gla"] = (sc(plain), out[0.0][1])
    return out


def _assert_no_worse(res):
    for key, (ours, ref) in res.items():
        # "no worse" up to float32 rounding: both run in single precision
        assert ours <= ref * (1 + 2e-3) + 1e-6, (key, ours, ref)
    assert res[0.99][0] < res[0.0][0]  # FGLA converges faster than GLA


def test_gla_spectral_convergence_vs_librosa_harmonic():
    res = _librosa_compare(harmonic(1.0), 16)
    _assert_no_worse(res)


def test_gla_spectral_convergence_vs_librosa_real_speech(ljspeech_root):
    res = _librosa_compare(lj_speech(ljspeech_root, 3.0), 32)
    _assert_no_worse(res)
    assert res[0.99][0] < 0.15  # 32 FGLA iterations on real speech: SC measured ~0.06


# --------------------------------------------------------------------------------- mel inversion
def _feats(x: np.ndarray):
    f, fr = LogMelExtractor(CFG)(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    return f[..., : int(fr[0])], fr


def test_pinv_and_nnls_inversion_reanalysis(ljspeech_root):
    """Mel -> linear -> mel again. Tolerances (natural-log mel power): pinv with clamping, mean abs
    error < 0.1 on bins within 40 dB (9.2 nats) of the utterance's peak (measured 0.06) and < 0.3
    overall (measured 0.18; clamping hurts most in quiet bins); nnls < 0.01 overall."""
    f, fr = _feats(lj_speech(ljspeech_root, 3.0))
    fb = mel_filterbank(CFG)
    strong = f[0] > f[0].max() - 9.2
    for method, tol_strong, tol_all in (("pinv", 0.1, 0.3), ("nnls", 0.01, 0.01)):
        mag = logmel_to_magnitude(f, CFG, fr, method=method)
        assert mag.shape == (1, 257, f.shape[-1]) and bool((mag >= 0).all())
        err = (torch.log(fb @ mag.square() + CFG.log_zero_guard_value) - f)[0].abs()
        assert err[strong].mean() < tol_strong, (method, float(err[strong].mean()))
        assert err.mean() < tol_all, (method, float(err.mean()))


def test_batched_nnls_matches_scipy_objective():
    f, _ = _feats(harmonic(0.5))
    mel = logmel_to_melpower(f, CFG)[0, :, 10:16]
    fb = mel_filterbank(CFG).double()
    exact = torch.from_numpy(nnls_scipy(mel.numpy(), CFG))
    ours = mel_to_power(mel[None], CFG, "nnls", n_iter=200)[0].double()
    pinv = mel_to_power(mel[None], CFG, "pinv")[0].double()
    rel = lambda p: ((fb @ p - mel.double()).norm(dim=0) / mel.double().norm(dim=0))  # noqa: E731
    assert bool((ours >= 0).all())
    assert float(rel(ours).max()) < 1e-3 and float(rel(exact).max()) < 1e-6
    assert float(rel(ours).max()) < float(rel(pinv).max())


def test_deemphasis_inverts_preemphasis():
    x = torch.from_numpy(np.stack([harmonic(0.3), harmonic(0.3, 180)]))
    torch.testing.assert_close(deemphasis(preemphasis(x, 0.97), 0.97), x, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- logmel_to_wave
def test_logmel_to_wave_reanalysis_lengths_and_batch(ljspeech_root):
    """FGLA-32 from pinv magnitudes, then the ASR's features again: mean abs log-mel error < 0.2 nats
    on bins within 40 dB of the peak (measured ~0.12). Output length = frames * hop."""
    y = lj_speech(ljspeech_root, 2.0)
    x2 = y[:23_456]
    fa, fra = _feats(y)
    fb_, frb = _feats(x2)
    feats = torch.zeros(2, 80, fa.shape[-1])
    feats[0], feats[1, :, : fb_.shape[-1]] = fa[0], fb_[0]
    lens = torch.tensor([int(fra[0]), int(frb[0])])
    wave, wl = logmel_to_wave(feats, lens, CFG, method="fgla", n_iter=32)
    assert wave.shape == (2, fa.shape[-1] * 160) and wl.tolist() == (lens * 160).tolist()
    assert len(y) - int(wl[0]) < 160
    assert torch.all(wave[1, int(wl[1]):] == 0)
    single, sl = logmel_to_wave(fb_, frb, CFG, method="fgla", n_iter=32)
    torch.testing.assert_close(wave[1, : int(sl[0])], single[0, : int(sl[0])], atol=1e-4, rtol=0)
    re, _ = LogMelExtractor(CFG)(wave[:1, : int(wl[0])], wl[:1])
    err = (re[0, :, : int(lens[0])] - fa[0]).abs()
    strong = fa[0] > fa[0].max() - 9.2
    assert err[strong].mean() < 0.2, float(err[strong].mean())
    with pytest.raises(ValueError, match="denoiser"):
        logmel_to_wave(fa, fra, CFG, method="degli")
    with pytest.raises(ValueError, match="unknown vocoder"):
        logmel_to_wave(fa, fra, CFG, method="wavenet")


# ----------------------------------------------------------------------------------- DeGLI, refiner
def test_degli_untrained_equals_gla_and_training_reduces_loss(tmp_path):
    x = harmonic(1.5)
    mag = _mag(x)
    net = DeGLIDenoiser(channels=8, layers=2)
    torch.testing.assert_close(deep_griffin_lim(mag, net, 6, CFG), griffin_lim(mag, 6, CFG), atol=1e-5, rtol=0)
    clean = torch.from_numpy(np.stack([x[:8000], x[8000:16000]]))
    snr = torch.tensor([0.0, 6.0])
    with torch.no_grad():
        before = float(degli_loss(net, clean, CFG, snr, torch.Generator().manual_seed(5)))
    net = train_degli([x], CFG, steps=80, batch_size=2, crop_s=0.5, lr=3e-3, denoiser=net, snr_db=(0.0, 6.0),
                      log_every=0)
    with torch.no_grad():
        after = float(degli_loss(net, clean, CFG, snr, torch.Generator().manual_seed(5)))
    assert after < before, (before, after)
    net.save(tmp_path / "degli.pt")
    net2 = DeGLIDenoiser.load(tmp_path / "degli.pt")
    f, fr = _feats(x)
    a, _ = logmel_to_wave(f, fr, CFG, method="degli", n_iter=3, denoiser=net)
    b, _ = logmel_to_wave(f, fr, CFG, method="degli", n_iter=3, denoiser=net2)
    torch.testing.assert_close(a, b)
    assert torch.isfinite(a).all()


def test_refiner_identity_at_init_and_training_reduces_loss(tmp_path):
    x = harmonic(1.5)
    f, fr = _feats(x)
    net = MelRefiner(hidden=32, layers=2)
    mag = logmel_to_magnitude(f, CFG, fr)
    torch.testing.assert_close(net(f, mag, fr), mag, atol=1e-4, rtol=1e-4)
    w = torch.from_numpy(x)[None]
    lens = torch.tensor([len(x)])
    with torch.no_grad():
        before = float(refiner_loss(net, w, lens, CFG))
    net = train_refiner([x], CFG, steps=20, batch_size=2, crop_s=0.5, lr=3e-3, refiner=net, log_every=0)
    with torch.no_grad():
        after = float(refiner_loss(net, w, lens, CFG))
    assert after < before, (before, after)
    net.save(tmp_path / "ref.pt")
    a, _ = logmel_to_wave(f, fr, CFG, n_iter=2, refiner=net)
    b, _ = logmel_to_wave(f, fr, CFG, n_iter=2, refiner=MelRefiner.load(tmp_path / "ref.pt"))
    torch.testing.assert_close(a, b)
