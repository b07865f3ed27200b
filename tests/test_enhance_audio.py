"""``specenh enhance-audio`` on your own files: mixed rates, stereo, a bad file that does not stop the others."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from specenh.cli import main


def _tone(sr: float, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x = x + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return np.stack([x, 0.5 * x], 1).astype(np.float32) if channels == 2 else x.astype(np.float32)


def test_folder_mixed_rates_stereo_and_a_bad_file(tmp_path, capfd):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a.wav", _tone(16000, 1.0), 16000)
    sf.write(src / "sub" / "b.flac", _tone(44100, 0.8, channels=2), 44100)
    sf.write(src / "c.wav", _tone(8000, 0.6), 8000)
    (src / "bad.wav").write_bytes(b"RIFF....not audio")
    out = tmp_path / "out"
    rc = main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(out), "--n-iter", "4"])
    assert rc == 1  # one file failed; the others were enhanced
    for rel in ("a.wav", "sub/b.wav", "c.wav"):
        y, sr = sf.read(out / rel)
        assert sr == 16000 and y.ndim == 1 and len(y) > 0.5 * 16000 * 0.6
    assert not (out / "bad.wav").exists()
    rows = {r["key"]: r for r in csv.DictReader(open(out / "enhance_audio.tsv"), delimiter="\t")}
    assert rows["sub/b.flac"]["conversion"] == "resampled 44100->16000 Hz; mixed 2->1 channels"
    assert rows["c.wav"]["conversion"] == "resampled 8000->16000 Hz" and rows["a.wav"]["conversion"] == "-"
    assert rows["bad.wav"]["output_or_status"].startswith("failed: ") and "bad.wav (bad.wav)" in capfd.readouterr().err
    # --strict stops at the bad file
    assert main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(tmp_path / "o2"),
                 "--strict"]) == 1


def test_wave_frontend_and_data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    sf.write(tmp_path / "u1.wav", _tone(16000, 1.0), 16000)
    (d / "wav.scp").write_text(f"u1 {tmp_path / 'u1.wav'}\n")
    rc = main(["enhance-audio", "--input", str(d), "--frontend", "specsub", "--out-dir", str(tmp_path / "o")])
    assert rc == 0
    y, sr = sf.read(tmp_path / "o" / "u1.wav")
    assert sr == 16000 and abs(len(y) - 16000) < 400


def _tiny_stage5_setup(tmp_path):
    """A 5-utterance data dir, a tiny random NeMo ASR, its features, a random tiny StyleGAN with an alpha grid
    (grid.yaml) and an auto (identity, the grid, specsub; margin 0.001). Returns (data dir, asr, feats)."""
    import torch

    from specenh.asr.train import build_model, train_tokenizer
    from specenh.data.kaldi import read_kv
    from specenh.frontends.base import build
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score
    from specenh.utils.config import load_yaml

    repo = Path(__file__).resolve().parents[1]
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    d.mkdir()
    lines = []
    for i in range(5):
        t = np.arange(int(16000 * (0.6 + 0.15 * i))) / 16000
        x = 0.2 * np.sin(2 * np.pi * (180 + 40 * i) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(tmp_path / f"u{i}.wav", x.astype(np.float32), 16000)
        lines.append(f"u{i} {tmp_path / f'u{i}.wav'}\n")
    (d / "wav.scp").write_text("".join(lines))
    (d / "text").write_text("".join(f"u{i} the old farmer\n" for i in range(5)))
    (d / "utt2spk").write_text("".join(f"u{i} u{i}\n" for i in range(5)))
    (d / "spk2utt").write_text("".join(f"u{i} u{i}\n" for i in range(5)))
    tok = train_tokenizer(["the old farmer carried seven heavy baskets"] * 20, tmp_path / "tok", vocab_size=20)
    cfg = load_yaml(repo / "conf" / "asr" / "conformer_ctc_mini.yaml")["model"]
    cfg["encoder"].update(n_layers=1, d_model=16, n_heads=2)
    cfg["decoder"]["feat_in"] = 16
    torch.manual_seed(0)
    asr = tmp_path / "asr.nemo"
    build_model(cfg, tok).save_to(str(asr))
    fc, feats = tmp_path / "feature_config.yaml", tmp_path / "feats"
    assert main(["asr-info", "--asr-model", str(asr), "--write-feature-config", str(fc)]) == 0
    assert main(["extract-feats", "--data-dir", str(d), "--out-dir", str(feats), "--feature-config", str(fc)]) == 0
    assert main(["extract-feats", "--data-dir", str(d), "--out-dir", str(feats), "--feature-config", str(fc),
                 "--merge"]) == 0
    g = torch.Generator().manual_seed(0)
    gan = build({"name": "stylegan", "latent_dim": 16, "style_depth": 2, "capacity": 2, "fmap_max": 8})
    with torch.no_grad():
        for p in gan.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    gan.save(tmp_path / "gan.pt")
    (tmp_path / "grid.yaml").write_text(f"checkpoint: {tmp_path / 'gan.pt'}\ninference: {{alpha: [0.0, 0.5, 1.0]}}\n")
    (tmp_path / "auto.yaml").write_text(f"members: [identity, {tmp_path / 'grid.yaml'}, specsub]\n"
                                        "inference: {margin: 0.001}\n")
    return d, asr, feats


def test_enhance_audio_chooses_as_stage5(tmp_path):
    """On a data dir, enhance-audio picks, file for file, the candidate stage 5 picked (its `choice` file): an
    observation-adding grid of a (random, tiny) StyleGAN and an `auto` with a margin whose members are
    identity, that grid and a waveform front-end (its audio through the ASR's feature extractor)."""
    from specenh.data.kaldi import read_kv
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    d, asr, feats = _tiny_stage5_setup(tmp_path)
    for spec in (str(tmp_path / "grid.yaml"), str(tmp_path / "auto.yaml")):
        dec, out = tmp_path / ("dec_" + Path(spec).stem), tmp_path / ("enh_" + Path(spec).stem)
        decode_job(feats, spec, str(asr), dec, batch_size=2)
        merge_and_score(feats, dec, nj=1, frontend=spec, asr_model=str(asr), n_boot=0)
        stage5 = read_kv(dec / "choice")
        assert main(["enhance-audio", "--input", str(d), "--frontend", spec, "--asr-model", str(asr),
                     "--out-dir", str(out), "--n-iter", "2"]) == 0
        rows = {r["key"]: r for r in csv.DictReader(open(out / "enhance_audio.tsv"), delimiter="\t")}
        assert {u: r["choice"] for u, r in rows.items()} == stage5
        assert all(0 < float(r["confidence"]) <= 1 for r in rows.values())
        for u, r in rows.items():
            y, sr = sf.read(r["output_or_status"])
            assert sr == 16000 and len(y) > 0
    # auto's choices span the members (the waveform one included): the test compares real choices
    assert len(set(stage5.values())) >= 2 and set(stage5.values()) <= {
        "identity", "grid/alpha=0", "grid/alpha=0.5", "grid/alpha=1", "specsub"}


def test_runtime_onnx_gives_stage5_and_enhance_audio_the_same_choices(tmp_path):
    """--runtime onnx: the StyleGAN's network exported once (cached next to its checkpoint) and run in
    onnxruntime; stage 5 and enhance-audio choose, file for file, what the PyTorch run chose."""
    import pytest

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from specenh.data.kaldi import read_kv
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    d, asr, feats = _tiny_stage5_setup(tmp_path)
    spec = str(tmp_path / "auto.yaml")
    choices = {}
    for runtime in ("pytorch", "onnx"):
        dec = tmp_path / f"dec_{runtime}"
        decode_job(feats, spec, str(asr), dec, batch_size=2, runtime=runtime)
        info = merge_and_score(feats, dec, nj=1, frontend=spec, asr_model=str(asr), n_boot=0)
        choices[runtime] = read_kv(dec / "choice")
        assert (dec / "hyp").read_text() == (tmp_path / "dec_pytorch" / "hyp").read_text()
    assert choices["onnx"] == choices["pytorch"] and len(set(choices["pytorch"].values())) >= 2
    graphs = list((tmp_path / "onnx").glob("stylegan.*.onnx"))
    assert len(graphs) == 1  # exported once, next to gan.pt (the checkpoint the grid YAML names)
    out = tmp_path / "enh_onnx"
    assert main(["enhance-audio", "--input", str(d), "--frontend", spec, "--asr-model", str(asr),
                 "--out-dir", str(out), "--n-iter", "2", "--runtime", "onnx"]) == 0
    rows = {r["key"]: r for r in csv.DictReader(open(out / "enhance_audio.tsv"), delimiter="\t")}
    assert {u: r["choice"] for u, r in rows.items()} == choices["pytorch"]
    assert list((tmp_path / "onnx").glob("stylegan.*.onnx")) == graphs  # the cached graph was reused


def test_never_overwrites_or_merges_inputs(tmp_path):
    """--out-dir = --input would overwrite the recordings; a.wav and a.flac would share a.wav: both refused
    before anything is written. An out-dir inside the input is not re-enhanced on the next run."""
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "a.wav", _tone(16000, 0.5), 16000)
    before = (src / "a.wav").read_bytes()
    assert main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(src)]) != 0
    assert (src / "a.wav").read_bytes() == before
    sf.write(src / "a.flac", _tone(16000, 0.5), 16000)
    out = tmp_path / "out"
    assert main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(out)]) != 0
    assert not out.exists() or not any(out.iterdir())
    (src / "a.flac").unlink()
    inner = src / "enhanced"
    for _ in range(2):
        assert main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(inner),
                     "--n-iter", "2"]) == 0
    assert sorted(p.relative_to(inner).as_posix() for p in inner.rglob("*.wav")) == ["a.wav"]


def test_lengths_skipped_files_and_a_missing_asr(tmp_path, capfd):
    """The output is as long as the input; an .mp3 is named when skipped; a front-end that chooses with the ASR
    fails once, before any file, without --asr-model."""
    src = tmp_path / "in"
    src.mkdir()
    x = _tone(16000, 0.73)
    sf.write(src / "a.wav", x, 16000)
    (src / "b.mp3").write_bytes(b"ID3 not decoded here")
    out = tmp_path / "out"
    assert main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(out),
                 "--n-iter", "2"]) == 0
    assert len(sf.read(out / "a.wav")[0]) == len(x)
    err = capfd.readouterr().err
    assert "b.mp3" in err and "skipped" in err
    rc = main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--frontend-opts", "alpha=0,1",
               "--out-dir", str(tmp_path / "o2")])
    assert rc != 0 and not (tmp_path / "o2" / "enhance_audio.tsv").exists()


def test_empty_and_too_short_files_say_what_is_wrong(tmp_path):
    """A 0-byte file is "empty", a file shorter than one frame hop names its length; the others go on."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "empty.wav").write_bytes(b"")
    sf.write(src / "one.wav", np.full(1, 0.1, dtype=np.float32), 16000)
    sf.write(src / "ok.wav", _tone(16000, 0.5), 16000)
    rc = main(["enhance-audio", "--input", str(src), "--frontend", "identity", "--out-dir", str(tmp_path / "out")])
    assert rc != 0
    rows = {r["key"]: r for r in csv.DictReader(open(tmp_path / "out" / "enhance_audio.tsv"), delimiter="\t")}
    assert rows["empty.wav"]["output_or_status"] == "failed: empty file (0 bytes)"
    assert rows["one.wav"]["output_or_status"].startswith("failed: 1 sample(s) (0.1 ms at 16000 Hz): shorter than one")
    assert rows["ok.wav"]["output_or_status"].endswith("ok.wav")


def test_a_long_file_logs_its_steps(tmp_path, monkeypatch, capfd):
    """Files longer than LONG_FILE_S log each step (the file bar alone says nothing for minutes)."""
    import specenh.stages.enhance_audio as ea

    monkeypatch.setattr(ea, "LONG_FILE_S", 0.5)
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "long.wav", _tone(16000, 1.0), 16000)
    sf.write(src / "short.wav", _tone(16000, 0.3), 16000)
    assert main(["enhance-audio", "--input", str(src), "--frontend", "specsub", "--out-dir", str(tmp_path / "o")]) == 0
    steps = [m for m in capfd.readouterr().err.splitlines() if "s of audio)" in m]
    assert steps and all("long.wav" in m for m in steps) and any("candidate output" in m for m in steps)
