"""Our log-mel features equal NeMo's AudioToMelSpectrogramPreprocessor (normalize off, dither 0)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from specenh.data.kaldi import DataDir, save_data_dir, read_kv
from specenh.features.extract import check_features, extract_features, feature_config_from_mapping
from specenh.features.io import pad_batch, read_feats_scp, unpad_batch, length_sorted_batches
from specenh.features.logmel import FeatureConfig, LogMelExtractor, num_frames


def nemo_preprocessor(cfg: FeatureConfig):
    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor

    kw = cfg.to_nemo()
    kw.pop("_target_")
    kw["normalize"] = None  # NeMo: falsy -> no normalisation
    pre = AudioToMelSpectrogramPreprocessor(**kw)
    return pre.eval()


def nemo_feats(pre, wave: torch.Tensor, lengths: torch.Tensor):
    with torch.no_grad():
        x, n = pre(input_signal=wave, length=lengths)
    return x, n


def _speechlike(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * x + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("cfg", [FeatureConfig(), FeatureConfig(features=64, window_size=0.02, lowfreq=20, highfreq=7600)])
def test_equals_nemo_random_batch(cfg):
    rng = np.random.default_rng(0)
    lens = torch.tensor([16000, 12345, 8001, 400, 23999])
    wave = torch.zeros(len(lens), int(lens.max()))
    for i, n in enumerate(lens):
        sig = rng.standard_normal(int(n)).astype(np.float32) * rng.uniform(0.001, 0.5)
        if i == 1:
            sig = _speechlike(int(n), i)
        wave[i, :n] = torch.from_numpy(sig)
    ours, frames = LogMelExtractor(cfg)(wave, lens)
    ref, ref_len = nemo_feats(nemo_preprocessor(cfg), wave, lens)
    assert torch.equal(frames, ref_len)
    for i in range(len(lens)):
        t = int(frames[i])
        np.testing.assert_allclose(ours[i, :, :t].numpy(), ref[i, :, :t].numpy(), atol=1e-4, rtol=0)
        assert torch.all(ours[i, :, t:] == 0)


def test_equals_nemo_real_speech(ljspeech_root):
    cfg = FeatureConfig()
    from specenh.data.audio import load_audio

    wavs = sorted((ljspeech_root / "wavs").glob("*.wav"))[:4]
    sigs = [load_audio(w, 16000)[0] for w in wavs]
    mats = [torch.from_numpy(s)[:, None] for s in sigs]
    wave, lens = pad_batch(mats)
    wave = wave[:, 0, :]
    ours, frames = LogMelExtractor(cfg)(wave, lens)
    ref, ref_len = nemo_feats(nemo_preprocessor(cfg), wave, lens)
    assert torch.equal(frames, ref_len)
    for i in range(len(sigs)):
        t = int(frames[i])
        np.testing.assert_allclose(ours[i, :, :t].numpy(), ref[i, :, :t].numpy(), atol=1e-4, rtol=0)


def test_batch_equals_single():
    cfg = FeatureConfig()
    ext = LogMelExtractor(cfg)
    sigs = [_speechlike(n, n) for n in (9000, 16000, 4321)]
    wave, lens = pad_batch([torch.from_numpy(s)[:, None] for s in sigs])
    batch, frames = ext(wave[:, 0, :], lens)
    for i, s in enumerate(sigs):
        one, f1 = ext(torch.from_numpy(s)[None], torch.tensor([len(s)]))
        assert int(f1[0]) == int(frames[i]) == num_frames(len(s), cfg)
        np.testing.assert_allclose(batch[i, :, : int(f1[0])].numpy(), one[0, :, : int(f1[0])].numpy(), atol=1e-5)


def test_config_from_nemo_model_config():
    nemo_cfg = {"model": {"preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                                            "sample_rate": 16000, "window_size": 0.025, "window_stride": 0.01,
                                            "features": 80, "n_fft": 512, "normalize": "per_feature", "dither": 1e-5}}}
    cfg = feature_config_from_mapping(nemo_cfg)
    assert cfg == FeatureConfig()
    with pytest.raises(ValueError, match="frame_splicing"):
        FeatureConfig.from_nemo({"frame_splicing": 3})


def test_extract_data_dir_jobs_identical(tmp_path):
    wav_scp, utt2spk, text = {}, {}, {}
    for i, n in enumerate([16000, 8000, 20000, 12000, 5000]):
        u = f"spk{i % 2}-utt{i}"
        p = tmp_path / "wav" / f"{u}.wav"
        p.parent.mkdir(exist_ok=True)
        sr = 16000 if i != 3 else 22050  # one wrong-rate file is resampled
        sf.write(p, _speechlike(n if sr == 16000 else int(n * sr / 16000), i), sr)
        wav_scp[u], utt2spk[u], text[u] = str(p), f"spk{i % 2}", "hello world"
    save_data_dir(DataDir(wav_scp=wav_scp, utt2spk=utt2spk, text=text), tmp_path / "data")
    scp1 = extract_features(tmp_path / "data", tmp_path / "f1", nj=1)
    scp2 = extract_features(tmp_path / "data", tmp_path / "f2", nj=2, batch_size=2)
    f1, f2 = read_feats_scp(scp1), read_feats_scp(scp2)
    assert list(read_kv(scp1)) == sorted(wav_scp)
    for u in wav_scp:
        assert f1[u].dtype == np.float32 and f1[u].shape[1] == 80
        np.testing.assert_array_equal(f1[u], f2[u])
    check_features(tmp_path / "f1", FeatureConfig())
    assert (tmp_path / "f1" / "text").read_text() == (tmp_path / "data" / "text").read_text()
    # a rerun is a no-op; an overwrite gives the same bytes
    before = (tmp_path / "f1" / "feats.1.ark").read_bytes()
    extract_features(tmp_path / "data", tmp_path / "f1", nj=1, overwrite=True)
    assert (tmp_path / "f1" / "feats.1.ark").read_bytes() == before


def test_bad_audio_names_utterance(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"not a wav file")
    save_data_dir(DataDir(wav_scp={"s-u1": str(p)}, utt2spk={"s-u1": "s"}), tmp_path / "data")
    with pytest.raises(ValueError, match="s-u1"):
        extract_features(tmp_path / "data", tmp_path / "f")


def test_pad_unpad_roundtrip():
    mats = [np.random.rand(t, 80).astype(np.float32) for t in (5, 9, 1)]
    b, lens = pad_batch(mats)
    assert b.shape == (3, 80, 9)
    for a, c in zip(mats, unpad_batch(b, lens)):
        np.testing.assert_array_equal(a, c)
    batches = list(length_sorted_batches({"a": 5, "b": 9, "c": 1, "d": 7}, batch_size=2))
    assert batches == [["b", "d"], ["a", "c"]]


def test_enhance_writes_feature_dir(tmp_path, monkeypatch):
    from specenh.stages.enhance_feats import write_enhanced_feats

    wav_scp, utt2spk = {}, {}
    for i, n in enumerate([16000, 9000]):
        u = f"s-u{i}"
        p = tmp_path / f"{u}.wav"
        sf.write(p, _speechlike(n, i), 16000)
        wav_scp[u], utt2spk[u] = str(p), "s"
    save_data_dir(DataDir(wav_scp=wav_scp, utt2spk=utt2spk, text={u: "a b" for u in wav_scp}), tmp_path / "data")
    extract_features(tmp_path / "data", tmp_path / "f")
    scp = write_enhanced_feats(tmp_path / "f", "identity", tmp_path / "e")
    a, b = read_feats_scp(tmp_path / "f" / "feats.scp"), read_feats_scp(scp)
    for u in wav_scp:
        np.testing.assert_array_equal(a[u], b[u])
    assert (tmp_path / "e" / "text").is_file() and (tmp_path / "e" / "feats_config.yaml").is_file()


# ---------------------------------------------------------------- bad input (issue #19)


def _small_dir(tmp_path, n: int = 3):
    wav_scp, utt2spk, text = {}, {}, {}
    for i in range(n):
        u = f"spk0-utt{i}"
        p = tmp_path / "wav" / f"{u}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, _speechlike(8000 + 1000 * i, i), 16000)
        wav_scp[u], utt2spk[u], text[u] = str(p), "spk0", "hello world"
    save_data_dir(DataDir(wav_scp=wav_scp, utt2spk=utt2spk, text=text), tmp_path / "data")
    return tmp_path / "data", wav_scp


def _extract_cli(data, out, capsys) -> tuple[int, str]:
    from specenh.cli import main

    rc = main(["extract-feats", "--data-dir", str(data), "--out-dir", str(out)])
    return rc, capsys.readouterr().err


def test_extract_refuses_truncated_and_silent_wavs(tmp_path, capsys):
    """Items 1 and 2: a truncated or all-zero wav stops the job, naming the utterance and the file."""
    data, wavs = _small_dir(tmp_path)
    p = wavs["spk0-utt1"]
    raw = open(p, "rb").read()
    open(p, "wb").write(raw[: 44 + int(0.38 * (len(raw) - 44))])
    rc, err = _extract_cli(data, tmp_path / "f", capsys)
    assert rc == 1 and f"truncated audio (utterance 'spk0-utt1', file {p})" in err
    sf.write(p, np.zeros(8000, np.float32), 16000)
    rc, err = _extract_cli(data, tmp_path / "f", capsys)
    assert rc == 1 and f"silent audio (utterance 'spk0-utt1', file {p})" in err
    assert not (tmp_path / "f" / ".done").exists() and not list((tmp_path / "f").glob("feats*"))


def test_extract_refuses_wav_scp_text_mismatch(tmp_path, capsys):
    """Item 7: wav.scp and text disagree: refused with the ids, nothing written."""
    data, _ = _small_dir(tmp_path)
    (data / "text").write_text("spk0-utt0 hello world\nspk0-utt2 hello world\nspk0-zz hello\n")
    rc, err = _extract_cli(data, tmp_path / "f", capsys)
    assert rc == 1 and "'spk0-utt1'" in err and "'spk0-zz'" in err and f"{data}/text" in err
    assert not list((tmp_path / "f").glob("feats*"))


def test_extract_disk_full_removes_partial_ark(tmp_path, monkeypatch, capsys):
    """Item 8: ENOSPC after the first matrix: the error names the ark; no partial ark/scp, not done."""
    import errno
    import os

    from specenh.features.io import FeatWriter

    data, _ = _small_dir(tmp_path)
    real = FeatWriter.write
    written = []

    def full_disk(self, utt, mat):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(utt)
        real(self, utt, mat)

    monkeypatch.setattr(FeatWriter, "write", full_disk)
    rc, err = _extract_cli(data, tmp_path / "f", capsys)
    ark = tmp_path / "f" / "feats.1.ark"
    assert rc == 1 and f"cannot write features {ark}" in err and "No space left on device" in err
    assert written and not ark.exists() and not (tmp_path / "f" / "feats.1.scp").exists()
    assert not (tmp_path / "f" / ".done").exists()
    monkeypatch.setattr(FeatWriter, "write", real)
    assert _extract_cli(data, tmp_path / "f", capsys)[0] == 0  # a rerun with room completes
    assert len(read_kv(tmp_path / "f" / "feats.1.scp")) == 3


def test_standalone_extract_writes_feats_scp_or_says_how(tmp_path, capsys):
    """One job (--nj 1, the default) merges itself; job 1 of 2 says which command writes feats.scp."""
    from specenh.cli import main
    from specenh.features.io import read_feats_scp

    data, wavs = _small_dir(tmp_path)
    rc, _ = _extract_cli(data, tmp_path / "one", capsys)
    assert rc == 0 and set(read_feats_scp(tmp_path / "one" / "feats.scp")) == set(wavs)
    rc = main(["extract-feats", "--data-dir", str(data), "--out-dir", str(tmp_path / "two"), "--nj", "2", "--job", "1"])
    err = capsys.readouterr().err
    assert rc == 0 and not (tmp_path / "two" / "feats.scp").exists()
    assert "job 1 of 2" in err and "--nj 2 --merge" in err
