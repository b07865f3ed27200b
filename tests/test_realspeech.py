"""egs/realspeech pieces: noise folders per split, transcript-less clip folders, the recipe's conditions."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.data.clips import prepare_audio_folder
from specenh.data.kaldi import DataDirError, read_kv
from specenh.degrade.condition import load_condition
from specenh.degrade.noise import add_noise, make_noise

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "realspeech"


def _write(path: Path, x: np.ndarray, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


@pytest.fixture()
def split_noise(tmp_path) -> dict[str, str]:
    """Two folders: train noise is a 100 Hz tone, test noise a 3 kHz tone (told apart by their spectrum)."""
    t = np.arange(16000) / 16000
    _write(tmp_path / "train" / "n1.wav", 0.1 * np.sin(2 * np.pi * 100 * t))
    _write(tmp_path / "test" / "car.wav", 0.1 * np.sin(2 * np.pi * 3000 * t))
    _write(tmp_path / "test" / "one_male_english.wav", 0.1 * np.sin(2 * np.pi * 3000 * t))
    return {"train": str(tmp_path / "train"), "test": str(tmp_path / "test")}


def _peak_hz(x: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * 16000 / len(x))


def test_noise_dir_per_split_is_disjoint(split_noise) -> None:
    rng = np.random.default_rng(0)
    assert _peak_hz(make_noise("files", 8000, 16000, rng, split="train", noise_dir=split_noise)) == pytest.approx(100, abs=4)
    assert _peak_hz(make_noise("files", 8000, 16000, rng, split="test", noise_dir=split_noise)) == pytest.approx(3000, abs=4)
    speech = (0.1 * np.random.default_rng(1).standard_normal(16000)).astype(np.float32)
    noisy = add_noise(speech, 16000, np.random.default_rng(2), source="files", noise_dir=split_noise, snr=[0],
                      split="test", glob="[censw]*")
    n = noisy - speech
    assert 10 * np.log10(np.mean(speech ** 2) / np.mean(n.astype(np.float64) ** 2)) == pytest.approx(0, abs=0.1)
    with pytest.raises(ValueError, match="no 'test' folder"):
        make_noise("files", 100, 16000, rng, split="test", noise_dir={"train": split_noise["train"]})
    with pytest.raises(ValueError, match="no train noise files"):  # a glob matching nothing in the train folder
        make_noise("files", 100, 16000, rng, split="train", noise_dir=split_noise, glob="*male*")


def test_prepare_audio_folder(tmp_path) -> None:
    rng = np.random.default_rng(0)
    _write(tmp_path / "flat" / "19-198-0001.flac", 0.1 * rng.standard_normal(8000))
    _write(tmp_path / "flat" / "26-495-0000.flac", 0.1 * rng.standard_normal(4000))
    _write(tmp_path / "nested" / "1688" / "1688-142285-0000.flac", 0.1 * rng.standard_normal(4000))
    _write(tmp_path / "byspk" / "7021" / "0001.wav", 0.1 * rng.standard_normal(4000))
    d = prepare_audio_folder(tmp_path / "flat", tmp_path / "out")
    assert d.utt_ids == ["19-198-0001", "26-495-0000"] and d.utt2spk["19-198-0001"] == "19"
    assert read_kv(tmp_path / "out" / "utt2dur")["19-198-0001"].startswith("0.5")
    assert not (tmp_path / "out" / "text").exists()
    assert prepare_audio_folder(tmp_path / "nested", tmp_path / "o2").utt_ids == ["1688-142285-0000"]
    assert prepare_audio_folder(tmp_path / "byspk", tmp_path / "o3").utt2spk == {"7021-0001": "7021"}
    with pytest.raises(DataDirError, match="no .wav/.flac files"):
        prepare_audio_folder(tmp_path / "out", tmp_path / "o4")


def test_recipe_conditions_load_and_keep_noise_disjoint(shared_data, monkeypatch) -> None:
    """Every condition of egs/realspeech loads; its real-noise conditions draw training noise from hu100 only and
    test noise from the test folder only (babble recordings for real_babble_5db, the others without them)."""
    from specenh.degrade.noise import noise_files

    monkeypatch.chdir(RECIPE)
    link = RECIPE / "downloads" / "noise_real"
    made = not link.exists()
    if made:
        link.parent.mkdir(exist_ok=True)
        os.symlink(shared_data / "noise_real", link)
    try:
        for y in sorted((RECIPE / "conf" / "degrade").glob("*.yaml")):
            cond = load_condition(y)
            step = cond.to_dict()["steps"][0]
            if step.get("source") != "files":
                continue
            nd, glob = step["noise_dir"], step.get("glob", "**/*")
            test = {Path(p).name for p in noise_files(nd["test"], "test", glob, "all")}
            assert test and all(not n.startswith("n") for n in test)
            if "babble" in y.stem:
                assert all("male" in n for n in test)
            else:
                assert all("male" not in n for n in test)
                train = {Path(p).name for p in noise_files(nd["train"], "train", glob, "all")}
                assert len(train) == 100 and not train & test
    finally:
        if made:
            link.unlink()
