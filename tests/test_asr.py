"""FrozenASR: loading, freezing, decoding from our features == NeMo's transcribe() on the waveform."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from specenh.asr import ASRLoadError, load_asr
from specenh.asr.train import build_model, train_tokenizer
from specenh.features.logmel import LogMelExtractor
from specenh.utils.config import load_yaml

REPO = Path(__file__).resolve().parents[1]
WORDS = "the old farmer carried seven heavy baskets to market before noon while a quiet child sang".split()


def _tiny_cfg():
    cfg = load_yaml(REPO / "conf" / "asr" / "conformer_ctc_mini.yaml")
    enc = cfg["model"]["encoder"]
    enc.update(n_layers=2, d_model=32, n_heads=2, subsampling_conv_channels=32)
    cfg["model"]["decoder"]["feat_in"] = 32
    return cfg


@pytest.fixture(scope="module")
def tiny_nemo(tmp_path_factory) -> Path:
    """An untrained (random) tiny Conformer-CTC saved as .nemo: random weights emit varied text,
    which makes the decode-equality test meaningful."""
    d = tmp_path_factory.mktemp("asr")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=8)) for _ in range(200)]
    tok = train_tokenizer(texts, d / "tok", vocab_size=40)
    torch.manual_seed(0)
    model = build_model(_tiny_cfg()["model"], tok)
    path = d / "tiny.nemo"
    model.save_to(str(path))
    return path


def _waves(tmp: Path, n: int = 3):
    rng = np.random.default_rng(1)
    paths, sigs = [], []
    for i in range(n):
        t = np.arange(int(16000 * (1.0 + 0.4 * i))) / 16000
        x = 0.2 * np.sin(2 * np.pi * (150 + 50 * i) * t * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))) + 0.05 * rng.standard_normal(len(t))
        p = tmp / f"u{i}.wav"
        sf.write(p, x.astype(np.float32), 16000, subtype="FLOAT")
        paths.append(str(p))
        sigs.append(x.astype(np.float32))
    return paths, sigs


def test_frozen_and_eval(tiny_nemo):
    asr = load_asr(tiny_nemo)
    assert not any(p.requires_grad for p in asr.parameters())
    asr.train()
    assert not asr.model.training and not asr.model.encoder.training
    assert asr.kind == "ctc"
    assert asr.preprocessor_config().features == 80


def test_decode_equals_transcribe(tiny_nemo, tmp_path):
    asr = load_asr(tiny_nemo)
    paths, sigs = _waves(tmp_path)
    ext = LogMelExtractor(asr.preprocessor_config())
    mats = []
    for s in sigs:
        f, n = ext(torch.from_numpy(s)[None], torch.tensor([len(s)]))
        mats.append(f[0, :, : int(n[0])].T.numpy())
    # the CTC log-probs agree (stronger than text equality)
    x = torch.from_numpy(sigs[0])[None]
    with torch.no_grad():
        lp_ref, len_ref, _ = asr.model(input_signal=x, input_signal_length=torch.tensor([x.shape[1]]))
        enc, enc_len = asr.encode(torch.from_numpy(mats[0].T)[None], torch.tensor([mats[0].shape[0]]))
        lp = asr.model.decoder(encoder_output=enc)
    assert int(enc_len[0]) == int(len_ref[0])
    torch.testing.assert_close(lp[:, : int(enc_len[0])], lp_ref[:, : int(len_ref[0])], atol=1e-3, rtol=1e-3)
    ours = asr.decode_batched(mats, batch_size=2)
    theirs = asr.model.transcribe(paths, batch_size=2, verbose=False)
    theirs = [h if isinstance(h, str) else h.text for h in theirs]
    assert any(ours), "random tiny model should emit some text"
    assert ours == theirs
    # NeMo's transcribe() leaves submodules in training mode; FrozenASR re-asserts eval
    assert asr.decode_batched(mats, batch_size=2) == ours



def test_encoder_features_differentiable(tiny_nemo):
    asr = load_asr(tiny_nemo)
    x = torch.randn(2, 80, 120, requires_grad=True)
    lens = torch.tensor([120, 90])
    feats, flen = asr.encoder_features(x, lens, layers=[0, -1])
    assert len(feats) == 2 and feats[0].shape[:2] == (2, 32)
    assert feats[0].shape[2] >= int(flen.max())
    loss = sum(f.pow(2).mean() for f in feats)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in asr.parameters())


def test_wrong_feature_dim_and_bad_model(tiny_nemo, tmp_path):
    asr = load_asr(tiny_nemo)
    with pytest.raises(ValueError, match="80"):
        asr.decode(torch.zeros(1, 64, 50), torch.tensor([50]))
    bad = tmp_path / "broken.nemo"
    bad.write_bytes(b"this is not a tar archive")
    with pytest.raises(ASRLoadError, match="broken.nemo"):
        load_asr(bad)
    with pytest.raises(ASRLoadError, match="not found"):
        load_asr(tmp_path / "missing.nemo")


def test_decode_job_pairs_dirs():
    """Several sets in one decode job: feature and output dirs must pair up (checked before any load)."""
    from specenh.stages.decode import decode_job

    with pytest.raises(ValueError, match="2 feature dirs but 1 output dirs"):
        decode_job(["a", "b"], "identity", "x.nemo", ["oa"])
    with pytest.raises(ValueError, match="clean feature dirs"):
        decode_job(["a", "b", "c"], "identity", "x.nemo", ["oa", "ob", "oc"], clean_feats_dir=["c1", "c2"])


def test_decode_fingerprint_changes_with_model(tmp_path):
    """A retrained ASR (same path, new file) must invalidate finished decodes, not be skipped silently."""
    import os

    from specenh.stages.decode import _is_done, decode_fingerprint

    m = tmp_path / "model.nemo"
    m.write_bytes(b"a")
    stamp = decode_fingerprint(str(m), "identity")
    marker = tmp_path / "decode.1"
    marker.write_text(stamp)
    assert _is_done(marker, decode_fingerprint(str(m), "identity"))
    assert not _is_done(marker, decode_fingerprint(str(m), "identity", ["psi=0.5"]))
    marker.write_text(stamp)  # a stale marker was removed: the job is redone
    m.write_bytes(b"bb")
    os.utime(m, ns=(1, 1))
    assert not _is_done(marker, decode_fingerprint(str(m), "identity"))
    assert not _is_done(tmp_path / "missing", stamp)


@pytest.mark.parametrize("subsampling", ["stacking", "striding"])
def test_decoding_is_batch_invariant(tmp_path, subsampling):
    """An utterance's encoder output and hypothesis do not depend on its batch: alone, in a batch of 7 and of 32
    (stacking subsampling padded the batch to a multiple of 4 and added that pad to every length)."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=8)) for _ in range(200)]
    tok = train_tokenizer(texts, tmp_path / "tok", vocab_size=40)
    cfg = _tiny_cfg()["model"]
    cfg["encoder"]["subsampling"] = subsampling
    torch.manual_seed(0)
    asr = load_asr(build_model(cfg, tok))
    lens = [101, 97, 130, 64, 77, 118, 99]  # residues mod 4 differ: the batch pad differs from each one's own
    mats = [torch.randn(n, 80) for n in lens]
    alone = []
    for m in mats:
        enc, el = asr.encode(m.T[None], torch.tensor([m.shape[0]]))
        alone.append(enc[0, :, : int(el[0])])
    from specenh.features.io import pad_batch

    for group in (mats, (mats * 5)[:32]):
        x, l = pad_batch(group)
        enc, el = asr.encode(x, l)
        for i in range(len(mats)):
            assert int(el[i]) == alone[i].shape[-1]
            assert torch.allclose(enc[i, :, : int(el[i])], alone[i], atol=1e-4)
    hyp_alone = [asr.decode(m.T[None], torch.tensor([m.shape[0]]))[0] for m in mats]
    assert asr.decode_batched(mats, batch_size=7) == hyp_alone == asr.decode_batched((mats * 5)[:32], 32)[:7]
