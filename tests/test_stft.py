"""The one STFT (specenh.dsp.stft): windows, round trips, numpy vs torch, against torch.stft and librosa,
and bit-equality with the three implementations it replaced (numpy degradations, vocoder framing, mask
front-end), each reimplemented here as it was."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specenh.dsp.stft import (ENV_EPS, PERIODIC, SYMMETRIC, WINDOWS, Framing, StftConfig, hann_np, hann_torch,
                              istft_np, istft_torch, num_stft_frames, overlap_add, stft_np, stft_torch, window_np)

CFG16 = StftConfig.for_rate(16000)  # 512 / 160 / 400, periodic


def signal(n: int, seed: int = 0) -> np.ndarray:
    """Harmonics plus noise with an onset and a fade: float64 [n]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) / k for k, f in enumerate((150, 310, 720, 1900), 1))
    return 0.1 * x * np.linspace(0.2, 1.0, n) + 0.01 * rng.standard_normal(n)


# --- the former implementations, as they were ------------------------------------------------

def _old_np_window(cfg: StftConfig) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    left = (cfg.n_fft - cfg.win_length) // 2
    out = np.zeros(cfg.n_fft)
    out[left:left + cfg.win_length] = w
    return out


def _old_np_stft(x: np.ndarray, cfg: StftConfig) -> np.ndarray:  # specenh/degrade/dsp.py
    pad = cfg.n_fft // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (pad, pad))
    n_frames = 1 + len(x) // cfg.hop
    need = (n_frames - 1) * cfg.hop + cfg.n_fft
    if len(xp) < need:
        xp = np.pad(xp, (0, need - len(xp)))
    frames = np.lib.stride_tricks.sliding_window_view(xp, cfg.n_fft)[:: cfg.hop][:n_frames]
    return np.fft.rfft(frames * _old_np_window(cfg), axis=-1).T


def _old_np_istft(spec: np.ndarray, cfg: StftConfig, length: int) -> np.ndarray:
    n_frames = spec.shape[1]
    win = _old_np_window(cfg)
    frames = np.fft.irfft(spec.T, n=cfg.n_fft, axis=-1) * win
    total = (n_frames - 1) * cfg.hop + cfg.n_fft
    out, norm, wsq = np.zeros(total), np.zeros(total), win * win
    for t in range(n_frames):
        out[t * cfg.hop:t * cfg.hop + cfg.n_fft] += frames[t]
        norm[t * cfg.hop:t * cfg.hop + cfg.n_fft] += wsq
    pad = cfg.n_fft // 2
    out, norm = out[pad:pad + length], norm[pad:pad + length]
    out = np.where(norm > 1e-10, out / np.maximum(norm, 1e-10), 0.0)
    return np.pad(out, (0, length - len(out))) if len(out) < length else out


class _OldVocoderFraming:  # specenh/vocoder/framing.py (symmetric Hann, reciprocal envelope)
    def __init__(self, n_fft, hop, win, batch, n, num_samples=None, frames=None, dtype=torch.float32):
        self.n_fft, self.hop, self.win, self.batch, self.n = n_fft, hop, win, batch, n
        self.t = 1 + n // hop
        self.window = torch.hann_window(win, periodic=False, dtype=dtype)
        left = (n_fft - win) // 2
        self.win_padded = F.pad(self.window, (left, n_fft - win - left))
        if frames is None and num_samples is not None:
            frames = 1 + torch.div(num_samples, hop, rounding_mode="floor")
        full_s = num_samples is None or bool((num_samples == n).all())
        full_f = frames is None or bool((frames >= self.t).all())
        self.smask = None if full_s else (torch.arange(n)[None, :] < num_samples[:, None]).to(dtype)
        self.fmask = None if full_f else (torch.arange(self.t)[None, :] < frames[:, None]).to(dtype)
        fm = torch.ones(batch, self.t, dtype=dtype) if self.fmask is None else self.fmask
        env = self._ola(fm[:, :, None] * self.win_padded.square()[None, None, :])[:, n_fft // 2:n_fft // 2 + n]
        if env.shape[1] < n:
            env = F.pad(env, (0, n - env.shape[1]))
        self.inv_env = torch.where(env > 1e-11, 1.0 / env.clamp(min=1e-11), torch.zeros_like(env))
        if self.smask is not None:
            self.inv_env = self.inv_env * self.smask

    def _ola(self, seg):
        b, t, length = seg.shape
        nb = math.ceil(length / self.hop)
        s = F.pad(seg, (0, nb * self.hop - length)).view(b, t, nb, self.hop)
        out = seg.new_zeros(b, t + nb - 1, self.hop)
        for j in range(nb):
            out[:, j:j + t] += s[:, :, j]
        return out.reshape(b, -1)

    def stft(self, x):
        if self.smask is not None:
            x = x * self.smask
        spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop, win_length=self.win, window=self.window,
                          center=True, pad_mode="constant", return_complex=True)
        return spec if self.fmask is None else spec * self.fmask[:, None, :]

    def istft(self, spec):
        seg = torch.fft.irfft(spec.transpose(1, 2), n=self.n_fft, dim=2) * self.win_padded
        if self.fmask is not None:
            seg = seg * self.fmask[:, :, None]
        y = self._ola(seg)[:, self.n_fft // 2:self.n_fft // 2 + self.n]
        if y.shape[1] < self.n:
            y = F.pad(y, (0, self.n - y.shape[1]))
        return y * self.inv_env


class _OldMaskSTFT:  # specenh/frontends/mask.py (periodic Hann built in float64, F.fold, divide, eps 1e-8)
    def __init__(self, win=400, hop=160, n_fft=512):
        self.win_length, self.hop, self.n_fft = win, hop, n_fft
        w = torch.hann_window(win, periodic=True, dtype=torch.float64)
        left = (n_fft - win) // 2
        full = torch.zeros(n_fft, dtype=torch.float64)
        full[left:left + win] = w
        self.window = full.float()

    @staticmethod
    def _tmask(lengths, total):
        return torch.arange(total)[None, :] < lengths[:, None]

    def forward(self, wave, lengths):
        wave = wave.float() * self._tmask(lengths, wave.shape[-1])
        spec = torch.stft(wave, n_fft=self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                          center=True, pad_mode="constant", return_complex=True)
        frames = 1 + torch.div(lengths, self.hop, rounding_mode="floor")
        return spec * self._tmask(frames, spec.shape[-1])[:, None, :], frames

    def inverse(self, spec, frames, num_samples):
        b, _, t = spec.shape
        valid = self._tmask(frames, t).to(self.window.dtype)
        seg = torch.fft.irfft(spec.transpose(1, 2), n=self.n_fft, dim=-1) * self.window * valid[:, :, None]
        total = self.n_fft + self.hop * (t - 1)
        fold = dict(output_size=(1, total), kernel_size=(1, self.n_fft), stride=(1, self.hop))
        out = F.fold(seg.transpose(1, 2), **fold).view(b, total)
        env = F.fold(self.window.square()[None, :, None] * valid[:, None, :], **fold).view(b, total)
        out = torch.where(env > 1e-8, out / env.clamp_min(1e-8), torch.zeros_like(out))
        out = out[:, self.n_fft // 2:self.n_fft // 2 + num_samples]
        return F.pad(out, (0, num_samples - out.shape[1])) if out.shape[1] < num_samples else out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


# --- each caller's output is the former implementation's, bit for bit ---------------------------

@pytest.mark.parametrize("sr", [16000, 8000, 22050])
@pytest.mark.parametrize("n", [16000, 160 * 37, 300, 1])
def test_numpy_caller_equals_former_degrade_dsp(sr: int, n: int) -> None:
    cfg = StftConfig.for_rate(sr)
    assert cfg.window == PERIODIC
    assert np.array_equal(window_np(cfg), _old_np_window(cfg))
    x = signal(n, seed=n)
    spec = stft_np(x, cfg)
    assert spec.dtype == np.complex128 and np.array_equal(spec, _old_np_stft(x, cfg))
    rng = np.random.default_rng(1)
    spec = spec * np.exp(2j * np.pi * rng.random(spec.shape)) * (rng.random(spec.shape) > 0.3)
    for length in (n, n + 7, max(1, n - 5)):
        assert np.array_equal(istft_np(spec, cfg, length), _old_np_istft(spec, cfg, length))


def test_degradations_use_it() -> None:
    import importlib

    holes, griffinlim, sig = (importlib.import_module(f"specenh.{m}")
                              for m in ("degrade.holes", "degrade.griffinlim", "metrics.signal"))

    assert holes.stft_np is stft_np and holes.istft_np is istft_np and griffinlim.stft_np is stft_np
    x = signal(8000)
    expect = 10.0 * np.log10(np.abs(_old_np_stft(x, CFG16).T) ** 2 + sig.LSD_POWER_FLOOR)
    assert np.array_equal(sig.log_power_spectrogram(x, 16000), expect)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vocoder_caller_equals_former_framing(dtype: torch.dtype) -> None:
    from specenh.features.config import FeatureConfig
    from specenh.vocoder import framing as vs

    fc = FeatureConfig()
    cfg = vs.framing_of(fc)
    assert (cfg.n_fft, cfg.hop, cfg.win_length, cfg.window) == (512, 160, 400, SYMMETRIC)
    n = 11_237
    x = torch.from_numpy(np.stack([signal(n, s) for s in range(3)])).to(dtype)
    lens = torch.tensor([n, 9000, 4001])
    cases = [(None, None), (lens, None), (lens, torch.tensor([60, 30, 20])), (None, torch.tensor([71, 50, 3]))]
    for lengths, frames in cases:
        old = _OldVocoderFraming(512, 160, 400, 3, n, lengths, frames, dtype=dtype)
        new = vs.Framing(fc, 3, n, lengths, frames, dtype=dtype)
        assert _same(new.window, old.window) and _same(new.win_padded, old.win_padded)
        s_new, s_old = new.stft(x), old.stft(x)
        assert _same(s_new, s_old)
        g = torch.rand(s_old.shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
        assert _same(new.istft(s_old * g), old.istft(s_old * g))
        assert _same(new.inv_env, old.inv_env)
    # the functional entry points
    old = _OldVocoderFraming(512, 160, 400, 3, n, lens, dtype=dtype)
    assert _same(vs.stft(x, fc, lens), old.stft(x))
    assert _same(vs.istft(old.stft(x), fc, num_samples=n, lengths=lens), old.istft(old.stft(x)))
    assert vs.num_stft_frames(n, fc) == 1 + n // 160 and _same(vs.padded_window(fc, dtype=dtype), old.win_padded)


@pytest.mark.parametrize("lengths", [[16000, 16000], [16000, 9137], [12001, 480]])
def test_mask_caller_equals_former_mask_stft(lengths: list[int]) -> None:
    from specenh.frontends.mask import STFT

    n = max(lengths)
    wave = torch.from_numpy(np.stack([signal(n, s) for s in range(len(lengths))])).float()
    lens = torch.tensor(lengths)
    old, new = _OldMaskSTFT(), STFT()
    assert new.cfg == StftConfig(512, 160, 400, PERIODIC) and _same(new.window, old.window)
    (s_new, f_new), (s_old, f_old) = new(wave, lens), old.forward(wave, lens)
    assert _same(s_new, s_old) and _same(f_new, f_old)
    g = torch.rand(s_old.shape, generator=torch.Generator().manual_seed(1))
    ratio = s_old * g
    cplx = s_old * torch.complex(g - 0.5, 1.0 - g)
    for spec in (ratio, cplx):
        assert _same(new.inverse(spec, f_old, n), old.inverse(spec, f_old, n))


def test_overlap_add_equals_fold_on_cpu() -> None:
    seg = torch.randn(2, 37, 512, generator=torch.Generator().manual_seed(2))
    total = 512 + 160 * 36
    fold = F.fold(seg.transpose(1, 2), output_size=(1, total), kernel_size=(1, 512), stride=(1, 160)).view(2, total)
    assert torch.equal(overlap_add(seg, 160)[:, :total], fold)


# --- the transform itself ---------------------------------------------------------------------

@pytest.mark.parametrize("win", [400, 401, 2])
def test_windows(win: int) -> None:
    import scipy.signal

    for periodic in (True, False):
        w = hann_np(win, periodic)
        np.testing.assert_allclose(w, scipy.signal.get_window("hann", win, fftbins=periodic), atol=1e-15)
        t = torch.hann_window(win, periodic=periodic, dtype=torch.float64).numpy()
        np.testing.assert_allclose(w, t, atol=1e-15)
    sym = hann_np(win, False)
    assert sym[0] == 0.0 and np.allclose(sym, sym[::-1])
    assert np.array_equal(hann_np(1, False), np.ones(1))
    cfg = StftConfig(512, 160, 400, SYMMETRIC)
    wp = window_np(cfg)
    assert wp.shape == (512,) and not wp[:56].any() and not wp[456:].any()
    np.testing.assert_allclose(hann_torch(cfg, dtype=torch.float64).numpy(), wp, atol=1e-15)
    assert hann_torch(cfg, padded=False).shape == (400,) and hann_torch(cfg).dtype == torch.float32


def test_config() -> None:
    assert (CFG16.n_fft, CFG16.hop, CFG16.win_length, CFG16.window) == (512, 160, 400, PERIODIC)
    c8 = StftConfig.for_rate(8000, window=SYMMETRIC)
    assert (c8.n_fft, c8.hop, c8.win_length, c8.window, c8.n_freq) == (256, 80, 200, SYMMETRIC, 129)
    assert CFG16.n_frames(16000) == num_stft_frames(16000, CFG16) == 101
    assert torch.equal(num_stft_frames(torch.tensor([0, 159, 160]), CFG16), torch.tensor([1, 1, 2]))
    for bad in (dict(window="hamming"), dict(win_length=600), dict(hop=0)):
        with pytest.raises(ValueError):
            StftConfig(**(dict(n_fft=512, hop=160, win_length=400) | bad))


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("n", [16000, 5, 160 * 20])
def test_round_trip_numpy_and_torch(window: str, n: int) -> None:
    cfg = StftConfig(512, 160, 400, window)
    x = signal(n, 3)
    assert stft_np(x, cfg).shape == (257, 1 + n // 160)
    np.testing.assert_allclose(istft_np(stft_np(x, cfg), cfg, n), x, atol=1e-12, rtol=0)
    xt = torch.from_numpy(x)[None]
    spec = stft_torch(xt, cfg)
    torch.testing.assert_close(istft_torch(spec, cfg, num_samples=n), xt, atol=1e-12, rtol=0)
    x32 = xt.float()
    torch.testing.assert_close(istft_torch(stft_torch(x32, cfg), cfg, num_samples=n), x32, atol=2e-6, rtol=0)
    torch.testing.assert_close(istft_torch(stft_torch(x32, cfg), cfg, num_samples=n, divide=True), x32, atol=2e-6,
                               rtol=0)


@pytest.mark.parametrize("window", [PERIODIC, SYMMETRIC])
def test_numpy_equals_torch(window: str) -> None:
    cfg = StftConfig(512, 160, 400, window)
    x = signal(7777, 4)
    s_np = stft_np(x, cfg)
    s_t = stft_torch(torch.from_numpy(x)[None], cfg)[0].numpy()
    np.testing.assert_allclose(s_t, s_np, atol=1e-12, rtol=0)
    y_np = istft_np(s_np * 0.5, cfg, len(x))
    y_t = istft_torch(torch.from_numpy(s_np * 0.5)[None], cfg, num_samples=len(x))[0].numpy()
    np.testing.assert_allclose(y_t, y_np, atol=1e-12, rtol=0)


@pytest.mark.parametrize("window", [PERIODIC, SYMMETRIC])
def test_against_torch_stft_and_librosa(window: str) -> None:
    import librosa

    cfg = StftConfig(512, 160, 400, window)
    x = signal(9001, 5)
    ref = torch.stft(torch.from_numpy(x), n_fft=512, hop_length=160, win_length=400,
                     window=torch.hann_window(400, periodic=window == PERIODIC, dtype=torch.float64), center=True,
                     pad_mode="constant", return_complex=True).numpy()
    np.testing.assert_allclose(stft_np(x, cfg), ref, atol=1e-12, rtol=0)
    lib = librosa.stft(x, n_fft=512, hop_length=160, win_length=400, window=hann_np(400, window == PERIODIC),
                       center=True, pad_mode="constant")
    np.testing.assert_allclose(stft_np(x, cfg), lib, atol=1e-10, rtol=0)
    if window == PERIODIC:  # librosa's "hann" is the periodic one
        lib_named = librosa.stft(x, n_fft=512, hop_length=160, win_length=400, window="hann", center=True,
                                 pad_mode="constant")
        np.testing.assert_allclose(lib_named, lib, atol=1e-6, rtol=0)
    y = torch.istft(torch.from_numpy(ref), n_fft=512, hop_length=160, win_length=400,
                    window=torch.hann_window(400, periodic=window == PERIODIC, dtype=torch.float64), center=True,
                    length=len(x)).numpy()
    np.testing.assert_allclose(istft_np(ref, cfg, len(x)), y, atol=1e-12, rtol=0)


def test_batch_equals_alone_and_masks() -> None:
    cfg = StftConfig(512, 160, 400, SYMMETRIC)
    a, b = torch.from_numpy(signal(12000, 6)).float(), torch.from_numpy(signal(5003, 7)).float()
    batch = torch.stack([a, F.pad(b, (0, 12000 - 5003), value=0.3)])  # garbage in the padding
    lens = torch.tensor([12000, 5003])
    spec = stft_torch(batch, cfg, lens)
    assert not spec[1, :, 1 + 5003 // 160:].any()
    torch.testing.assert_close(spec[1, :, :1 + 5003 // 160], stft_torch(b[None], cfg)[0], atol=1e-5, rtol=1e-5)
    g = torch.rand(spec.shape, generator=torch.Generator().manual_seed(3))
    for divide in (False, True):
        y = istft_torch(spec * g, cfg, frames=1 + lens // 160, num_samples=12000, lengths=lens, divide=divide)
        y1 = istft_torch((spec * g)[1:, :, :1 + 5003 // 160], cfg, num_samples=5003, divide=divide)
        torch.testing.assert_close(y[1, :5003], y1[0], atol=1e-5, rtol=1e-5)
        assert not y[1, 5003:].any()
    fr = Framing(cfg, 2, 12000, lens)
    assert fr.eps == ENV_EPS and fr.fmask is not None and fr.smask is not None
    with pytest.raises(ValueError, match="exceed"):
        Framing(cfg, 2, 1000, lens)
    with pytest.raises(ValueError, match="frames do not match"):
        istft_torch(spec, cfg, num_samples=5000)
    with pytest.raises(ValueError, match="padded to n_fft"):
        Framing(cfg, 1, 100, window=torch.ones(400))


def test_numpy_path_does_not_import_torch() -> None:
    code = ("import sys; from specenh.dsp.stft import StftConfig, stft_np, istft_np; import numpy as np; "
            "c = StftConfig.for_rate(16000); istft_np(stft_np(np.zeros(1000), c), c, 1000); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
