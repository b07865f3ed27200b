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
