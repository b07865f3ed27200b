"""Signal metrics (PESQ, STOI/ESTOI, SI-SDR, SDR, LSD) and stage 7 (resynthesis + metrics)."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from specenh.metrics.signal import (METRICS, align, compute_all, delta, lsd, pesq_score, sdr, si_sdr, stoi_score,
                                    summarize)

SR = 16000



def speechlike(dur: float = 2.0, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * dur)) / SR
    phase = 2 * np.pi * np.cumsum(f0 + 30 * np.sin(2 * np.pi * 0.5 * t)) / SR
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 40) if k * (f0 + 40) < SR / 2)
    env = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 0.7
    env[: SR // 4] = 0
    return (0.1 * x * env).astype(np.float32)


def noisy(s: np.ndarray, snr: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(s))
    n *= np.sqrt(np.sum(s.astype(np.float64) ** 2) / np.sum(n ** 2) / 10 ** (snr / 10))
    return (s + n).astype(np.float32)


def lj_pair(root):
    from specenh.data.audio import load_audio

    ref, _ = load_audio(sorted((root / "wavs").glob("*.wav"))[1], SR)
    ref = ref[: 4 * SR]
    return ref, noisy(ref, 5.0)


# ----------------------------------------------------------------------------- PESQ / STOI wrappers
def test_pesq_stoi_equal_the_packages_on_real_speech(ljspeech_root):
    from pesq import pesq
    from pystoi import stoi

    ref, deg = lj_pair(ljspeech_root)
    m = compute_all(ref, deg, SR)
    assert set(m) == set(METRICS)
    # equal up to float rounding (pystoi's reductions can differ in the last bit between runs)
    assert m["pesq"] == pytest.approx(pesq(SR, ref, deg, "wb"), rel=1e-12)
    assert m["stoi"] == pytest.approx(stoi(ref, deg, SR, extended=False), rel=1e-12)
    assert m["estoi"] == pytest.approx(stoi(ref, deg, SR, extended=True), rel=1e-12)
    assert 1.0 < m["pesq"] < 3.5 and 0.5 < m["stoi"] < 1.0
    # narrow band at 8 kHz equals the package too
    r8, d8 = ref[::2].copy(), deg[::2].copy()  # (aliasing is irrelevant: both get the same)
    assert pesq_score(r8, d8, 8000) == pytest.approx(pesq(8000, r8, d8, "nb"), rel=1e-12)


def test_pesq_stoi_equal_the_packages_on_synthetic():
    from pesq import pesq
    from pystoi import stoi

    s = speechlike(2.0)
    d = noisy(s, 10.0)
    assert pesq_score(s, d, SR) == pytest.approx(pesq(SR, s, d, "wb"), rel=1e-12)
    assert stoi_score(s, d, SR) == pytest.approx(stoi(s, d, SR), rel=1e-12)
    assert stoi_score(s, d, SR, extended=True) == pytest.approx(stoi(s, d, SR, extended=True), rel=1e-12)


def test_pesq_missing_not_crash_and_bad_rates(caplog):
    rng = np.random.default_rng(0)
    # PESQ's VAD finds no utterance in 60 ms of noise after silence: NoUtterancesError -> NaN
    ref = rng.standard_normal(SR) * np.r_[np.zeros(SR - 1000), np.ones(1000)]
    est = ref + 1e-3 * rng.standard_normal(SR)
    with caplog.at_level("WARNING"):
        assert math.isnan(pesq_score(ref, est, SR, utt="u1"))
    assert "missing" in caplog.text and "u1" in caplog.text
    m = compute_all(ref, est, SR)  # the other metrics still come
    assert math.isnan(m["pesq"]) and math.isfinite(m["si_sdr"])
    assert math.isnan(pesq_score(np.zeros(SR), np.zeros(SR), SR))  # silence: missing, not a crash
    s = summarize([m, compute_all(speechlike(1.0), noisy(speechlike(1.0), 5), SR)])
    assert s["pesq"]["missing"] == 1 and s["pesq"]["count"] == 1 and math.isfinite(s["pesq"]["mean"])
    with pytest.raises(ValueError, match="8000 or 16000"):
        pesq_score(ref, est, 22050)
    with pytest.raises(ValueError, match="wb"):
        pesq_score(ref[::2], est[::2], 8000, mode="wb")
    # pystoi's "not enough frames" (it would return 1e-5) is missing too
    assert math.isnan(stoi_score(np.r_[np.zeros(3000), rng.standard_normal(1000)], rng.standard_normal(4000), SR))


# -------------------------------------------------------------------------------- SDR / SI-SDR / LSD
def test_sdr_and_si_sdr_known_values():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(SR)
    s -= s.mean()
    e = rng.standard_normal(SR)
    e -= e.mean()
    e -= np.dot(e, s) / np.dot(s, s) * s  # orthogonal to s, zero mean
    e *= np.sqrt(np.dot(s, s) / np.dot(e, e) / 10.0)  # |e|^2 = |s|^2 / 10
    assert sdr(s, s + e) == pytest.approx(10.0, abs=1e-9)
    assert si_sdr(s, s + e) == pytest.approx(10.0, abs=1e-9)
    assert si_sdr(s, 3.0 * (s + e)) == pytest.approx(10.0, abs=1e-9)  # scale-invariant
    assert sdr(s, 3.0 * (s + e)) < 0  # plain SDR is not
    assert si_sdr(s, 0.37 * s) == pytest.approx(100.0)  # a scaled copy: the 100 dB cap, not inf
    assert sdr(s, s) == 100.0
    assert math.isnan(si_sdr(np.zeros(100), np.ones(100)))
    # SI-SDR removes the mean: an offset copy is still perfect
    assert si_sdr(s, s + 0.5) == pytest.approx(100.0)


def test_lsd_values():
    rng = np.random.default_rng(2)
    x = 0.1 * rng.standard_normal(SR)
    assert lsd(x, x, SR) == 0.0
    # twice the amplitude: +6.02 dB in every bin well above the 1e-8 floor
    assert lsd(x, 2 * x, SR) == pytest.approx(20 * np.log10(2), abs=0.01)
    s = speechlike(1.0)
    assert lsd(s, noisy(s, 0.0), SR) > lsd(s, noisy(s, 20.0), SR) > 0


def test_alignment_and_rate_errors(caplog):
    s = speechlike(1.0)
    d = noisy(s, 5.0)
    with caplog.at_level("DEBUG", logger="specenh.metrics.signal"):
        a = compute_all(s, d[:-100], SR)  # 6.25 ms shorter: trimmed
    assert "trimming" in caplog.text
    b = compute_all(s[:-100], d[:-100], SR)
    assert a == b
    r, e = align(s[:-159], d, SR)
    assert len(r) == len(e) == len(s) - 159
    with pytest.raises(ValueError, match=r"16000 samples.*15840 samples|reference 16000 samples, estimate 15840"):
        compute_all(s, d[:-160], SR)  # 10 ms: too much
    with pytest.raises(ValueError, match="sample rates differ"):
        compute_all(s, d, SR, est_sr=8000)
    with pytest.raises(ValueError, match="NaN"):
        compute_all(s, np.full_like(d, np.nan), SR)


def test_delta_and_summary():
    a = {"pesq": 2.0, "stoi": 0.9, "lsd": 5.0}
    b = {"pesq": 1.5, "stoi": 0.8, "lsd": 7.0, "sdr": 1.0}
    d = delta(a, b)
    assert d == pytest.approx({"pesq": 0.5, "stoi": 0.1, "lsd": -2.0})
    assert math.isnan(delta({"pesq": math.nan}, {"pesq": 1.0})["pesq"])
    s = summarize([{"pesq": 1.0}, {"pesq": math.nan}, {"pesq": 3.0}], metrics=("pesq",))
    assert s == {"pesq": {"mean": 2.0, "count": 2, "missing": 1}}


# --------------------------------------------------------------------------------- stage 7 (resynth)
@pytest.fixture()
def degraded_set(tmp_path):
    """A degraded data dir (white noise at 5 dB; one utterance scaled by utt2gain 0.5) + its features."""
    from specenh.data.kaldi import write_kv
    from specenh.features.extract import extract_features

    wav = tmp_path / "wav"
    wav.mkdir()
    utts = {"spk1-u1": speechlike(1.6, 0, 130.0), "spk1-u2": speechlike(1.2, 1, 170.0)}
    gains = {"spk1-u1": 1.0, "spk1-u2": 0.5}
    for u, s in utts.items():
        sf.write(wav / f"{u}.clean.wav", s, SR, subtype="FLOAT")
        sf.write(wav / f"{u}.wav", gains[u] * noisy(s, 5.0), SR, subtype="FLOAT")
    d = tmp_path / "data" / "test_noise"
    d.mkdir(parents=True)
    write_kv(d / "wav.scp", {u: wav / f"{u}.wav" for u in utts})
    write_kv(d / "clean.scp", {u: wav / f"{u}.clean.wav" for u in utts})
    write_kv(d / "utt2gain", {u: f"{g:.6f}" for u, g in gains.items()})
    write_kv(d / "utt2spk", {u: "spk1" for u in utts})
    write_kv(d / "text", {u: "hello" for u in utts})
    feats = tmp_path / "feats" / "test_noise"
    extract_features(d, feats)
    return d, feats


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_resynth_wave_frontend(degraded_set, tmp_path):
    from specenh.stages.resynth import read_metrics_csv, resynthesize

    data, feats = degraded_set
    out = tmp_path / "exp" / "resynth" / "test_noise_specsub"
    summary = resynthesize(feats, "specsub", out, data_dir=data, num_examples=1, max_utts=None)
    rows = _csv(out / "metrics.csv")
    assert [r["utt"] for r in rows] == ["spk1-u1", "spk1-u2"] and list(rows[0]) == ["utt", *METRICS]
    inp = {r["utt"]: r for r in _csv(out / "metrics_input.csv")}
    # the reference is gain * clean: the scaled utterance's input SDR is its 5 dB SNR too
    assert float(inp["spk1-u2"]["sdr"]) == pytest.approx(5.0, abs=0.05)
    assert float(inp["spk1-u1"]["sdr"]) == pytest.approx(5.0, abs=0.05)
    assert summary["gain_found"] and summary["domain"] == "wave" and summary["num_utts"] == 2
    assert summary["delta_vs_input"]["si_sdr"]["mean"] > 2.0
    assert summary["metrics"]["enhanced"]["pesq"]["missing"] == 0
    assert sorted(p.name for p in (out / "wav").iterdir()) == [
        "spk1-u1.clean.wav", "spk1-u1.degraded.wav", "spk1-u1.enhanced.wav"]
    assert (out / "spectrogram_spk1-u1.png").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text())["frontend"] == "specsub"
    # finished: a rerun with the same options is a no-op; other options redo it (the done marker's fingerprint)
    mtime = (out / "metrics.csv").stat().st_mtime_ns
    resynthesize(feats, "specsub", out, data_dir=data, num_examples=1, max_utts=None)
    assert (out / "metrics.csv").stat().st_mtime_ns == mtime
    resynthesize(feats, "specsub", out, data_dir=data, num_examples=1, max_utts=1)
    assert len(read_metrics_csv(out / "metrics.csv")) == 1


def test_resynth_logmel_frontend_via_cli(degraded_set, tmp_path):
    from specenh.cli import main

    data, feats = degraded_set
    out = tmp_path / "resynth_identity"
    rc = main(["resynth", "--feats-dir", str(feats), "--frontend", "identity", "--out-dir", str(out),
               "--data-dir", str(data), "--n-iter", "8", "--num-examples", "1", "--max-utts", "0"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["domain"] == "logmel" and s["vocoder"]["method"] == "fgla" and s["vocoder"]["n_iter"] == 8
    for name in ("metrics.csv", "metrics_input.csv", "metrics_input_resynth.csv", "metrics_clean_resynth.csv"):
        assert len(_csv(out / name)) == 2
    # identity through the vocoder is exactly the resynthesised input
    assert all(abs(v["mean"]) < 1e-9 for v in s["delta_vs_input_resynth"].values())
    # the vocoder's ceiling (clean features) beats the degraded features through the same vocoder
    m = s["metrics"]
    assert m["clean_resynth"]["lsd"]["mean"] < m["input_resynth"]["lsd"]["mean"]
    assert m["clean_resynth"]["stoi"]["mean"] > m["input_resynth"]["stoi"]["mean"]
    assert (out / "wav" / "spk1-u1.input_resynth.wav").is_file()
    assert main(["resynth", "--feats-dir", str(tmp_path / "nope"), "--frontend", "identity",
                 "--out-dir", str(out / "x")]) == 1


def test_resynth_set_shares_references_across_frontends(degraded_set, tmp_path):
    """One call for several front-ends writes what separate calls write (the per-set references
    are computed once) and skips a front-end that has finished."""
    from specenh.stages.resynth import resynthesize, resynthesize_set

    data, feats = degraded_set
    kw = dict(data_dir=data, n_iter=4, num_examples=1, max_utts=None)
    alone = {f: resynthesize(feats, f, tmp_path / "alone" / f, **kw) for f in ("identity", "specsub")}
    out = [tmp_path / "set" / f for f in ("identity", "specsub")]
    both = resynthesize_set(feats, ["identity", "specsub"], out, **kw)
    for f, s in zip(("identity", "specsub"), both):
        assert s["frontend"] == f and s["domain"] == alone[f]["domain"]
        flat = {(a, b, c): v for a, d in s["metrics"].items() for b, e in d.items() for c, v in e.items()}
        ref = {(a, b, c): v for a, d in alone[f]["metrics"].items() for b, e in d.items() for c, v in e.items()}
        assert flat == pytest.approx(ref, nan_ok=True) and len(flat) > 20
        assert _csv(tmp_path / "set" / f / "metrics_input.csv") == _csv(tmp_path / "alone" / f / "metrics_input.csv")
    # the log-mel front-end gets the vocoder references, the waveform one does not
    assert (out[0] / "metrics_clean_resynth.csv").is_file() and not (out[1] / "metrics_clean_resynth.csv").exists()
    assert sorted(p.name for p in (out[1] / "wav").iterdir()) == [
        "spk1-u1.clean.wav", "spk1-u1.degraded.wav", "spk1-u1.enhanced.wav"]
    mtime = (out[1] / "metrics.csv").stat().st_mtime_ns
    again = resynthesize_set(feats, ["identity", "specsub"], out, **kw)
    assert (out[1] / "metrics.csv").stat().st_mtime_ns == mtime and again[1]["frontend"] == "specsub"
    with pytest.raises(ValueError, match="2 front-ends but 1"):
        resynthesize_set(feats, ["identity", "specsub"], out[:1], **kw)
