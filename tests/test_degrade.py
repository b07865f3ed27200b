"""Tests for specenh.degrade: each degradation, conditions from conf/degrade, stage 2 and its CLI."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from specenh.data.audio import AudioError, load_audio
from specenh.data.kaldi import DataDir, read_kv, save_data_dir
from specenh.degrade import available_degradations, get_degradation
from specenh.degrade.apply import degrade_data_dir, merge_jobs
from specenh.degrade.condition import (
    DegradeError,
    condition_from_dict,
    load_condition,
)
from specenh.degrade.holes import holes_with_mask
from specenh.degrade.noise import noise_files, split_seed
from specenh.degrade.reverb import synth_rir
from specenh.dsp.stft import StftConfig, istft_np as istft, stft_np as stft
from specenh.utils.config import ConfigError
from specenh.utils.seed import rng_for

SR = 16000
CONF = Path(__file__).resolve().parents[1] / "conf" / "degrade"
# conditions needing no external noise folder
# conditions reading a noise corpus folder (MUSAN, ...) need that folder; they are tested with fakes below
CONF_FILES = sorted(p for p in CONF.glob("*.yaml") if "source: files" not in p.read_text() and "\nsweep:" not in p.read_text())
DETERMINISTIC = {"clean", "codec_mulaw8k", "bandlimit_1k", "bandlimit_2k", "bandlimit_4k"}


def pseudo_speech(n: int, sr: int, rng: np.random.Generator, pauses: bool = True) -> np.ndarray:
    """Speech-like float32 [n]: a gliding harmonic complex (f0 100-220 Hz, harmonics to 7 kHz with
    formant-like peaks) plus modulated noise, 4 Hz syllabic envelope, optional pauses. Peak ~0.3."""
    t = np.arange(n) / sr
    f0 = 100 + 60 * (1 + np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros(n)
    formants = rng.uniform([400, 1200, 2500], [800, 2000, 3500])
    for k in range(1, 60):
        fk = k * f0.mean()
        if fk > 0.45 * sr:
            break
        amp = sum(np.exp(-((fk - f) / 200.0) ** 2) for f in formants) + 0.05 / k
        x += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    x += 0.3 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 7 * t))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))) ** 2
    if pauses:
        gate = np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) > -0.3
        if gate[: n // 2].any() and gate[n // 2:].any():  # never a silent half
            env *= gate
    x *= env
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    return 10 * math.log10(np.sum(c ** 2) / np.sum((noisy.astype(np.float64) - c) ** 2))


def band_energy_db(x: np.ndarray, sr: int, cutoff: float, transition: float = 0.03) -> float:
    """Energy above ``cutoff * (1 + transition)`` relative to the energy below ``cutoff``, in dB
    (Welch PSD, 8192-point segments: 2 Hz resolution at 16 kHz)."""
    from scipy.signal import welch

    f, p = welch(x.astype(np.float64), fs=sr, nperseg=8192, window="hann")
    above = p[f > cutoff * (1 + transition)].sum()
    below = p[f < cutoff].sum()
    return 10 * math.log10(max(above, 1e-30) / below)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return pseudo_speech(2 * SR, SR, np.random.default_rng(1))


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[tuple[str, str]]:
    """Six pseudo-speech utterances on disk for babble: [(utt_id, path)]."""
    d = tmp_path_factory.mktemp("pool")
    out = []
    for i in range(6):
        p = d / f"spk{i}_u{i}.wav"
        sf.write(p, pseudo_speech(int((0.8 + 0.3 * i) * SR), SR, np.random.default_rng(100 + i)), SR, subtype="PCM_16")
        out.append((f"spk{i}_u{i}", str(p)))
    return out


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    """A MUSAN-like folder of 12 noise files (some 8 kHz, some shorter than an utterance)."""
    d = tmp_path_factory.mktemp("musan") / "noise"
    rng = np.random.default_rng(5)
    for i in range(12):
        sub = d / ("free-sound" if i % 2 else "sound-bible")
        sub.mkdir(parents=True, exist_ok=True)
        sr = 8000 if i % 3 == 0 else SR
        n = int(sr * (0.7 if i % 4 == 0 else 3.0))
        sf.write(sub / f"noise-{i:04d}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), sr, subtype="PCM_16")
    return d


# ---------------------------------------------------------------- single degradations


def test_registry() -> None:
    assert set(available_degradations()) >= {"noise", "bandlimit", "holes", "codec", "reverb", "griffinlim"}
    with pytest.raises(KeyError, match="unknown degradation"):
        get_degradation("nope")


@pytest.mark.parametrize("source", ["white", "pink", "brown", "hum", "bursts", "babble", "files"])
def test_noise_snr(source: str, speech, pool, noise_dir) -> None:
    fn = get_degradation("noise")
    for i, target in enumerate([-5.0, 0.0, 5.0, 10.0, 20.0]):
        for split in ("train", "test"):
            y = fn(speech, SR, rng_for(0, source, i, split), source=source, snr=[target], split=split,
                   pool=pool, utt_id="self", noise_dir=str(noise_dir))
            assert y.shape == speech.shape and y.dtype == np.float32
            assert abs(snr_db(speech, y) - target) < 0.5, (source, target, split)


def test_noise_snr_range_and_active_weighting(speech) -> None:
    fn = get_degradation("noise")
    got = [snr_db(speech, fn(speech, SR, rng_for(1, i), source="pink", snr_range=[3, 7])) for i in range(20)]
    assert all(2.99 < g < 7.01 for g in got) and np.std(got) > 0.5
    # active weighting: speech power over active frames only -> higher noise level than 'whole'
    x = speech.copy()
    x[: SR // 2] = 0.0  # a long pause
    y_whole = fn(x, SR, rng_for(2), source="white", snr=[5], weighting="whole")
    y_act = fn(x, SR, rng_for(2), source="white", snr=[5], weighting="active")
    assert abs(snr_db(x, y_whole) - 5) < 0.01
    assert snr_db(x, y_act) < 5 - 0.5
    with pytest.raises(ValueError, match="snr"):
        fn(x, SR, rng_for(3), source="white", snr=[5], snr_range=[0, 5])


def test_noise_train_test_disjoint(noise_dir, tmp_path) -> None:
    # folder noise: hash split by relative path, disjoint and complete, same on every call
    train = set(noise_files(str(noise_dir), "train"))
    test = set(noise_files(str(noise_dir), "test"))
    every = {str(p) for p in noise_dir.rglob("*.wav")}
    assert train and test and not (train & test) and (train | test) == every
    # MS-SNSD layout: its own folders decide
    ms = tmp_path / "MS-SNSD"
    for sub, k in (("noise_train", 3), ("noise_test", 2), ("clean_train", 1)):
        (ms / sub).mkdir(parents=True)
        for i in range(k):
            sf.write(ms / sub / f"{sub}_{i}.wav", np.full(800, 0.1, np.float32), SR)
    assert all("/noise_train/" in p for p in noise_files(str(ms), "train"))
    assert [Path(p).name for p in noise_files(str(ms), "test")] == ["noise_test_0.wav", "noise_test_1.wav"]
    with pytest.raises(ValueError, match="parent"):
        noise_files(str(ms / "noise_train"), "train")
    # DEMAND-like: split by folder keeps all channels of a scene together
    dm = tmp_path / "DEMAND"
    for scene in ("DKITCHEN", "OOFFICE", "PCAFETER", "STRAFFIC", "TMETRO", "NPARK", "SPSQUARE", "DLIVING"):
        (dm / scene).mkdir(parents=True)
        for ch in (1, 2):
            sf.write(dm / scene / f"ch{ch:02d}.wav", np.full(800, 0.1, np.float32), SR)
    for split in ("train", "test"):
        files = noise_files(str(dm), split, "**/*", "dir", 0.3)
        scenes = [Path(p).parent.name for p in files]
        assert all(scenes.count(s) == 2 for s in scenes)
    tr = {Path(p).parent.name for p in noise_files(str(dm), "train", "**/*", "dir", 0.3)}
    te = {Path(p).parent.name for p in noise_files(str(dm), "test", "**/*", "dir", 0.3)}
    assert not (tr & te) and len(tr | te) == 8
    # procedural noise: train seeds even, test seeds odd, for any utterance RNG
    for i in range(50):
        assert split_seed(rng_for(i), "train") % 2 == 0 and split_seed(rng_for(i), "test") % 2 == 1
    x = np.zeros(SR, np.float32) + 0.01
    fn = get_degradation("noise")
    assert not np.array_equal(fn(x, SR, rng_for(9), source="pink", snr=[0], split="train"),
                              fn(x, SR, rng_for(9), source="pink", snr=[0], split="test"))
    with pytest.raises(ValueError, match="split"):
        fn(x, SR, rng_for(9), source="pink", snr=[0], split="dev")


@pytest.mark.parametrize("cutoff", [1000, 2000, 4000])
def test_bandlimit_no_energy_above_cutoff(cutoff: int) -> None:
    # broadband input: pseudo-speech plus white noise up to 8 kHz
    rng = np.random.default_rng(cutoff)
    x = pseudo_speech(3 * SR, SR, rng) + (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    y = get_degradation("bandlimit")(x, SR, rng_for(cutoff), cutoff=cutoff)
    assert y.shape == x.shape
    assert band_energy_db(x, SR, cutoff) > -20  # the input really has energy up there
    assert band_energy_db(y, SR, cutoff, transition=0.03) < -40  # 3 % transition band allowed
    # pass band (below 0.85 * cutoff) kept within 0.5 dB
    from scipy.signal import welch

    f, px = welch(x.astype(np.float64), fs=SR, nperseg=8192)
    _, py = welch(y.astype(np.float64), fs=SR, nperseg=8192)
    band = f < 0.85 * cutoff
    assert abs(10 * math.log10(py[band].sum() / px[band].sum())) < 0.5


def test_codec_mulaw(speech) -> None:
    x = speech + (0.02 * np.random.default_rng(0).standard_normal(len(speech))).astype(np.float32)
    y = get_degradation("codec")(x, SR, rng_for(0))
    assert y.shape == x.shape
    assert band_energy_db(y, SR, 4000, transition=0.03) < -40
    ref = get_degradation("bandlimit")(x, SR, rng_for(0), cutoff=4000)
    assert snr_db(ref, y) > 20  # 8-bit mu-law keeps ~30 dB SNR on speech-level signals
    assert not np.array_equal(ref, y)


@pytest.mark.parametrize("sr,n_sec,coverage", [(16000, 3.0, 0.3), (16000, 0.5, 0.3), (8000, 2.0, 0.5), (16000, 2.0, 0.1)])
def test_holes_coverage_and_mask(sr: int, n_sec: float, coverage: float) -> None:
    x = pseudo_speech(int(n_sec * sr), sr, np.random.default_rng(3))
    y, mask = holes_with_mask(x, sr, rng_for("holes", sr, n_sec), coverage=coverage)
    cfg = StftConfig.for_rate(sr)
    assert cfg.n_fft == (512 if sr == 16000 else 256) and cfg.hop == sr // 100
    assert mask.dtype == bool and mask.shape == (cfg.n_fft // 2 + 1, 1 + len(x) // cfg.hop)
    assert abs(mask.mean() - coverage) <= 0.05
    assert y.shape == x.shape
    # the holes are (nearly) empty in the output: energy there drops well below the input's
    sx, sy = np.abs(stft(x, cfg)) ** 2, np.abs(stft(y, cfg)) ** 2
    assert sy[mask].sum() < 0.1 * sx[mask].sum()
    # outside the holes little changes
    assert abs(10 * math.log10(sy[~mask].sum() / sx[~mask].sum())) < 1.0


def test_holes_zero_coverage_is_identity_and_stft_inverts(speech) -> None:
    cfg = StftConfig.for_rate(SR)
    assert np.max(np.abs(istft(stft(speech, cfg), cfg, len(speech)) - speech)) < 1e-6
    y, mask = holes_with_mask(speech, SR, rng_for(0), coverage=0.0)
    assert not mask.any() and np.max(np.abs(y - speech)) < 1e-6


def test_reverb_rir_decay_and_level(speech) -> None:
    # RT60 from Schroeder backward integration (T20: -5 to -25 dB, x3), damping off
    for rt60 in (0.3, 0.8):
        h = synth_rir(SR, rt60, drr_db=-10.0, rng=rng_for(rt60), damping=False)
        assert h[0] == 1.0
        edc = np.cumsum((h ** 2)[::-1])[::-1]
        edc_db = 10 * np.log10(edc / edc[0])
        t5, t25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
        est = 3 * (t25 - t5) / SR
        assert abs(est - rt60) < 0.15 * rt60, (rt60, est)
        drr = 10 * np.log10(1.0 / np.sum(h[1:] ** 2))
        assert abs(drr - (-10.0)) < 0.1
    y = get_degradation("reverb")(speech, SR, rng_for(1), rt60=[0.6])
    assert y.shape == speech.shape
    assert abs(10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean(speech.astype(float) ** 2))) < 0.01
    assert snr_db(speech, y) < 15  # audibly reverberant


def test_griffinlim_keeps_magnitude_loses_phase(speech) -> None:
    y = get_degradation("griffinlim")(speech, SR, rng_for(0), n_iter=32)
    assert y.shape == speech.shape
    cfg = StftConfig.for_rate(SR)
    mx, my = np.abs(stft(speech, cfg)), np.abs(stft(y, cfg))
    spectral_convergence = np.linalg.norm(mx - my) / np.linalg.norm(mx)
    assert spectral_convergence < 0.35
    assert snr_db(speech, y) < 5  # the waveform (phase) is not the original


# ---------------------------------------------------------------- conditions


def test_condition_files_valid() -> None:
    from specenh.degrade.sweep import sweeps_in

    names = []
    sweeps = sweeps_in(CONF)
    for p in sorted(CONF.glob("*.yaml")):
        if p.stem in sweeps:  # a sweep file: its expanded conditions are the conditions
            for c in sweeps[p.stem]:
                names.append(load_condition(CONF / f"{c['name']}.yaml").name)
            continue
        cond = load_condition(p)
        assert cond.name == p.stem
        names.append(cond.name)
    listed = (CONF / "mini_test.list").read_text().split()
    assert listed and set(listed) <= set(names)
    assert {"clean", "noise_0db", "noise_5db", "noise_10db", "noise_20db", "bandlimit_1k", "bandlimit_2k",
            "bandlimit_4k", "holes30", "codec_mulaw8k", "reverb", "griffinlim32"} <= set(listed)


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.stem)
def test_condition_reproducible_and_length(path: Path, pool) -> None:
    cond = load_condition(path)
    x = pseudo_speech(12345, SR, np.random.default_rng(7))  # odd length on purpose
    run = lambda utt: cond.apply(x, SR, rng_for(0, cond.name, utt), utt_id=utt, pool=pool)  # noqa: E731
    a, b, c = run("spk0_u0"), run("spk0_u0"), run("spk1_u1")
    assert a.wave.shape == x.shape and a.wave.dtype == np.float32
    assert a.wave.tobytes() == b.wave.tobytes()
    assert a.aux.keys() == b.aux.keys() and all(a.aux[k].tobytes() == b.aux[k].tobytes() for k in a.aux)
    if cond.name in DETERMINISTIC:
        assert a.wave.tobytes() == c.wave.tobytes()
    else:
        assert a.wave.tobytes() != c.wave.tobytes()
    if cond.name == "clean":
        assert np.array_equal(a.wave, x)


def test_composition_equals_manual_chain(speech, pool) -> None:
    cond = condition_from_dict({"name": "combo", "steps": [
        {"type": "holes", "coverage": 0.2},
        {"type": "noise", "source": "babble", "snr": [10]},
        {"type": "codec"},
    ]})
    res = cond.apply(speech, SR, rng_for(0, "combo", "u"), utt_id="u", pool=pool, split="train")
    r = rng_for(0, "combo", "u").spawn(3)
    y1, mask = holes_with_mask(speech, SR, r[0], coverage=0.2)
    y2 = get_degradation("noise")(y1, SR, r[1], source="babble", snr=[10], pool=pool, utt_id="u", split="train")
    y3 = get_degradation("codec")(y2, SR, r[2])
    assert np.array_equal(res.wave, y3) and np.array_equal(res.aux["holes_mask"], mask)
    assert abs(mask.mean() - 0.2) < 0.05


def test_condition_validation_and_overrides(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"name": "c", "steps": [{"type": "noise", "source": "white", "snr": [5]}]}))
    cond = load_condition(p, ["steps.0.snr=[0]", "steps.0.source=[pink, hum]"])
    assert cond.steps[0].params == {"source": ["pink", "hum"], "snr": [0]}
    for bad, msg in [("steps.0.snr_db=[0]", "unknown parameter"), ("steps.3.snr=[0]", "list index"),
                     ("steps.0.split=train", "set by stage 2"), ("nme=x", "unknown top-level key")]:
        with pytest.raises(ConfigError, match=msg):
            load_condition(p, [bad])
    with pytest.raises(ConfigError, match="unknown degradation"):
        condition_from_dict({"name": "x", "steps": [{"type": "warp"}]})
    with pytest.raises(ConfigError, match="name"):
        condition_from_dict({"name": "a b", "steps": []})
    # a failing step names the condition, the step and the utterance
    cond = condition_from_dict({"name": "bab", "steps": [{"type": "noise", "source": "babble", "snr": [0]}]})
    with pytest.raises(DegradeError, match=r"'bab' step 0 \(noise\) on utterance 'u1'.*pool is empty"):
        cond.apply(np.ones(100, np.float32), SR, rng_for(0), utt_id="u1", pool=[("u1", "x.wav")])


# ---------------------------------------------------------------- stage 2


def make_data_dir(root: Path, n: int = 7) -> Path:
    """A tiny data dir: n pseudo-speech utterances of 0.4-1.0 s, 3 speakers, one at 22.05 kHz."""
    wav = root / "wav"
    wav.mkdir(parents=True)
    d = DataDir(wav_scp={}, utt2spk={}, text={}, utt2dur={})
    for i in range(n):
        spk = f"spk{i % 3}"
        utt = f"{spk}-utt{i:02d}"
        sr = 22050 if i == 3 else SR
        x = pseudo_speech(int((0.4 + 0.1 * i) * sr), sr, np.random.default_rng(i))
        sf.write(wav / f"{utt}.wav", x, sr, subtype="PCM_16")
        d.wav_scp[utt] = str(wav / f"{utt}.wav")
        d.utt2spk[utt] = spk
        d.text[utt] = f"WORD{i} OTHER"
        d.utt2dur[utt] = len(x) / sr
    save_data_dir(d, root / "data")
    return root / "data"


@pytest.fixture()
def combo_yaml(tmp_path) -> Path:
    p = tmp_path / "holes_babble.yaml"
    p.write_text(yaml.safe_dump({"name": "holes_babble", "steps": [
        {"type": "holes", "coverage": 0.3},
        {"type": "noise", "source": ["babble", "pink"], "snr": [10]},
    ]}, sort_keys=False))
    return p


def test_stage2_nj2_equals_nj1(tmp_path, combo_yaml) -> None:
    src = make_data_dir(tmp_path / "src")
    out1, out2 = tmp_path / "d1", tmp_path / "d2"
    degrade_data_dir(src, combo_yaml, out1, tmp_path / "w1", split="test", seed=3, progress=False)
    degrade_data_dir(src, combo_yaml, out2, tmp_path / "w2", split="test", seed=3, nj=2, job=2, progress=False)
    with pytest.raises(RuntimeError, match="job 1/2 has not finished"):
        merge_jobs(out2, 2)
    degrade_data_dir(src, combo_yaml, out2, tmp_path / "w2", split="test", seed=3, nj=2, job=1, progress=False)
    merge_jobs(out2, 2)

    for name in ("text", "utt2spk", "spk2utt", "utt2dur", "clean.scp", "utt2gain", "utt2cond", "condition.yaml"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    wav1, wav2 = read_kv(out1 / "wav.scp"), read_kv(out2 / "wav.scp")
    assert list(wav1) == list(wav2) == sorted(read_kv(src / "wav.scp"))
    for utt in wav1:
        assert Path(wav1[utt]).name == f"{utt}.wav"
        assert Path(wav1[utt]).read_bytes() == Path(wav2[utt]).read_bytes()
    m1, m2 = read_kv(out1 / "holes_mask.scp"), read_kv(out2 / "holes_mask.scp")
    assert list(m1) == list(wav1)
    for utt in m1:
        assert Path(m1[utt]).read_bytes() == Path(m2[utt]).read_bytes()
    # contents: 16 kHz 16-bit, length kept (the 22.05 kHz input is resampled), SNR 10 dB vs the clean
    clean = read_kv(out1 / "clean.scp")
    assert clean == read_kv(src / "wav.scp")
    for utt, path in wav1.items():
        info = sf.info(path)
        assert info.samplerate == SR and info.subtype == "PCM_16"
        x, _ = load_audio(clean[utt], SR)
        assert info.frames == len(x)
        mask = np.load(m1[utt])
        assert mask.dtype == bool and abs(mask.mean() - 0.3) <= 0.05
    cond = yaml.safe_load((out1 / "condition.yaml").read_text())
    assert cond["name"] == "holes_babble" and cond["provenance"]["seed"] == 3
    assert load_condition(out1 / "condition.yaml").to_dict()["steps"] == cond["steps"]
    # another seed or the train split gives other audio
    degrade_data_dir(src, combo_yaml, tmp_path / "d3", tmp_path / "w3", split="train", seed=3, progress=False)
    u = next(iter(wav1))
    assert (tmp_path / "w3" / f"{u}.wav").read_bytes() != Path(wav1[u]).read_bytes()


def test_stage2_snr_on_disk_and_resume(tmp_path) -> None:
    src = make_data_dir(tmp_path / "src", n=4)
    cond = CONF / "noise_10db.yaml"
    out, wav = tmp_path / "out", tmp_path / "wav"
    degrade_data_dir(src, cond, out, wav, seed=0, progress=False)
    clean = read_kv(out / "clean.scp")
    for utt, path in read_kv(out / "wav.scp").items():
        y, _ = load_audio(path, SR)
        x, _ = load_audio(clean[utt], SR)
        assert abs(snr_db(x, y) - 10) < 0.5, utt
    # a finished job is skipped: outputs untouched
    first = sorted(wav.glob("*.wav"))[0]
    before = (first.stat().st_mtime_ns, first.read_bytes())
    degrade_data_dir(src, cond, out, wav, seed=0, progress=False)
    assert first.stat().st_mtime_ns == before[0]
    # a killed job (no .done, a wav missing) reruns to the same bytes
    done = next(out.glob(".degrade/nj1.job1/.done"))
    done.unlink()
    first.unlink()
    degrade_data_dir(src, cond, out, wav, seed=0, progress=False)
    assert first.read_bytes() == before[1]
    # other settings (overrides) redo the job
    degrade_data_dir(src, cond, out, wav, seed=0, progress=False, overrides=["steps.0.snr=[0]"])
    assert first.read_bytes() != before[1]
    assert "snr:\n  - 0" in (out / "condition.yaml").read_text() or "snr: [0]" in (out / "condition.yaml").read_text()


def test_stage2_bad_audio_names_utterance(tmp_path) -> None:
    src = make_data_dir(tmp_path / "src", n=3)
    wavs = read_kv(src / "wav.scp")
    bad_utt = sorted(wavs)[1]
    Path(wavs[bad_utt]).write_bytes(b"RIFF this is not a wav")
    with pytest.raises(AudioError, match=bad_utt):
        degrade_data_dir(src, CONF / "clean.yaml", tmp_path / "o", tmp_path / "w", progress=False)
    sf.write(wavs[bad_utt], np.full(100, np.nan, np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"NaN.*{bad_utt}"):
        degrade_data_dir(src, CONF / "clean.yaml", tmp_path / "o", tmp_path / "w", progress=False)


def test_cli(tmp_path, capsys) -> None:
    from specenh.degrade import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    src = make_data_dir(tmp_path / "src", n=4)
    base = ["degrade", "--src-dir", str(src), "--condition", str(CONF / "bandlimit_2k.yaml"),
            "--out-dir", str(tmp_path / "out"), "--wav-dir", str(tmp_path / "wav"), "--nj", "2"]
    for job in ("1", "2"):
        args = parser.parse_args(base + ["--job", job])
        assert args.func(args) == 0
    args = parser.parse_args(["degrade", "--out-dir", str(tmp_path / "out"), "--nj", "2", "--merge"])
    assert args.func(args) == 0
    assert len(read_kv(tmp_path / "out" / "wav.scp")) == 4
    args = parser.parse_args(base[:-2] + ["--split", "train", "steps.0.cutoff=[500]"])
    assert args.overrides == ["steps.0.cutoff=[500]"] and args.func(args) == 0
    args = parser.parse_args(base[:-2] + ["steps.0.bogus=1"])
    assert args.func(args) == 1
    args = parser.parse_args(["degrade", "--list"])
    assert args.func(args) == 0 and "griffinlim" in capsys.readouterr().out


def test_real_speech(ljspeech_root, tmp_path) -> None:
    """Babble from other LJSpeech utterances at 5 dB and holes on real speech."""
    wavs = sorted((ljspeech_root / "wavs").glob("*.wav"))[:4]
    pool = [(p.stem, str(p)) for p in wavs]
    x, sr = load_audio(wavs[0], SR)
    x = x[: 3 * SR]
    cond = condition_from_dict({"name": "real", "steps": [{"type": "noise", "source": "babble", "snr": [5]}]})
    y = cond.apply(x, sr, rng_for(0, "real", wavs[0].stem), utt_id=wavs[0].stem, pool=pool).wave
    assert abs(snr_db(x, y) - 5) < 0.5
    _, mask = holes_with_mask(x, sr, rng_for(1), coverage=0.3)
    assert abs(mask.mean() - 0.3) <= 0.05


# ---------------------------------------------------------------- bad input and locks (issue #19)


def _truncate(wav: Path, keep: float) -> None:
    data = wav.read_bytes()
    wav.write_bytes(data[: 44 + int(keep * (len(data) - 44))])


def _run_cli(argv: list[str]) -> int:
    from specenh.degrade import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["degrade", *argv])
    return args.func(args)


def test_stage2_refuses_truncated_wav(tmp_path) -> None:
    """Item 1: 38% of the data left, header intact: refused, not degraded as a shorter utterance."""
    src = make_data_dir(tmp_path / "src", n=3)
    wavs = read_kv(src / "wav.scp")
    bad = sorted(wavs)[1]
    _truncate(Path(wavs[bad]), 0.38)
    with pytest.raises(AudioError, match=rf"truncated audio \(utterance '{bad}', file {wavs[bad]}\)"):
        degrade_data_dir(src, CONF / "clean.yaml", tmp_path / "o", tmp_path / "w", progress=False)
    assert not (tmp_path / "o" / "wav.scp").exists() and not (tmp_path / "o" / ".done").exists()


def test_stage2_refuses_silent_wav(tmp_path, caplog) -> None:
    """Item 2: an all-zero wav is an error naming the utterance; no silent "noisy" version is written."""
    src = make_data_dir(tmp_path / "src", n=3)
    wavs = read_kv(src / "wav.scp")
    bad = sorted(wavs)[2]
    sf.write(wavs[bad], np.zeros(8000, np.float32), SR)
    base = ["--src-dir", str(src), "--condition", str(CONF / "noise_5db.yaml"), "--out-dir", str(tmp_path / "o"),
            "--wav-dir", str(tmp_path / "w")]
    assert _run_cli(base) == 1
    assert f"silent audio (utterance '{bad}', file {wavs[bad]})" in caplog.text
    assert not (tmp_path / "w" / f"{bad}.wav").exists() and not (tmp_path / "o" / "wav.scp").exists()
    # and mixing noise into silence (e.g. from a composed condition) names the utterance too
    cond = condition_from_dict({"name": "n", "steps": [{"type": "noise", "source": "white", "snr": [5]}]})
    with pytest.raises(DegradeError, match=r"utterance 'u0'.*silent"):
        cond.apply(np.zeros(8000, np.float32), SR, rng_for(0), utt_id="u0", pool=[])


def test_stage2_refuses_wav_scp_text_mismatch(tmp_path, caplog) -> None:
    """Item 7: wav.scp and text disagree: refused with the ids, as validation does."""
    src = make_data_dir(tmp_path / "src", n=4)
    lines = (src / "text").read_text().splitlines()
    gone = lines[1].split()[0]
    (src / "text").write_text("\n".join(lines[:1] + lines[2:] + ["zz-extra WORD"]) + "\n")
    base = ["--src-dir", str(src), "--condition", str(CONF / "clean.yaml"), "--out-dir", str(tmp_path / "o"),
            "--wav-dir", str(tmp_path / "w")]
    assert _run_cli(base) == 1
    assert f"utterance {gone!r}" in caplog.text and "'zz-extra'" in caplog.text and f"{src}/text" in caplog.text
    assert not (tmp_path / "o" / "wav.scp").exists()


def test_stage2_disk_full_names_path(tmp_path, monkeypatch, caplog) -> None:
    """Item 8: ENOSPC while writing a wav: the error names the path; no partial file, nothing marked done."""
    import errno

    import specenh.data.audio as audio

    src = make_data_dir(tmp_path / "src", n=3)
    calls = []
    real = audio._write_file

    def full_disk(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(data[:100])  # some bytes reach the disk before it is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(audio, "_write_file", full_disk)
    base = ["--src-dir", str(src), "--condition", str(CONF / "clean.yaml"), "--out-dir", str(tmp_path / "o"),
            "--wav-dir", str(tmp_path / "w")]
    assert _run_cli(base) == 1
    second = sorted(read_kv(src / "wav.scp"))[1]
    assert f"cannot write {tmp_path / 'w' / second}.wav: No space left on device" in caplog.text
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [f"{sorted(read_kv(src / 'wav.scp'))[0]}.wav"]
    assert not list((tmp_path / "o").rglob(".done")) and not (tmp_path / "o" / "wav.scp").exists()


def test_stage2_lock_refuses_live_other_run_takes_over_stale(tmp_path, caplog) -> None:
    """Item 4: a job refuses to start while a live worker of another run holds the output dir (naming
    its PID); a lock left by a dead worker is taken over with a log line."""
    import subprocess
    import sys

    from specenh.utils.lock import LOCK_NAME, Holder, _start_time, holders

    src = make_data_dir(tmp_path / "src", n=2)
    out = tmp_path / "o"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        line = Holder(other.pid, _start_time(other.pid), socket.gethostname(), "0123456789ab", "degrade.1/2").line()
        (out / LOCK_NAME).write_text(line)
        base = ["--src-dir", str(src), "--condition", str(CONF / "clean.yaml"), "--out-dir", str(out),
                "--wav-dir", str(tmp_path / "w")]
        assert _run_cli(base) == 1
        assert f"PID {other.pid} (job degrade.1/2)" in caplog.text and f"kill {other.pid}" in caplog.text
        assert not (tmp_path / "w").exists()
    finally:
        other.kill()
        other.wait()
    caplog.clear()
    assert _run_cli(base) == 0
    assert f"stale lock of PID {other.pid} (job degrade.1/2) taken over" in caplog.text
    assert len(read_kv(out / "wav.scp")) == 2 and holders(out) == []
