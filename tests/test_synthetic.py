"""The embedded synthetic corpus (specenh.data.synthetic): text, voices, audio, determinism, resuming."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.data import synthetic as syn
from specenh.data.kaldi import load_data_dir, read_kv

SMALL = dict(num_train=40, num_dev=10, num_test=20)
WORD_RE = re.compile(r"^[a-z]+(?:'[a-z]+)*$")


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("mini")
    dirs = syn.prepare_mini(root / "data", root / "wav", seed=0, num_jobs=2, **SMALL)
    return root / "data", root / "wav", dirs


# --- the generated corpus ---------------------------------------------------------

def test_sizes_and_files(corpus):
    data, wav, dirs = corpus
    for split, n in (("train", 40), ("dev", 10), ("test", 20)):
        assert len(dirs[split]) == n
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "spk2gender"):
            assert (data / split / f).is_file(), f
        d = load_data_dir(data / split)
        assert d.utt_ids == dirs[split].utt_ids
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in d.wav_scp.values())
        assert set(read_kv(data / split / "spk2gender").values()) <= {"m", "f"}
    assert (data / "voices.json").is_file()


def test_passes_data_dir_validation(corpus):
    from specenh.data.validate import validate_data_dir

    data, _, _ = corpus
    for split in syn.SETS:
        validate_data_dir(data / split, require_text=True, check_audio=False, check_sorted=True)


def test_utt_ids_start_with_speaker(corpus):
    _, _, dirs = corpus
    for d in dirs.values():
        for utt, spk in d.utt2spk.items():
            assert re.fullmatch(r"v\d{3}", spk)
            assert utt.startswith(spk + "-")


def test_voices_and_sentences_disjoint_between_sets(corpus):
    _, _, dirs = corpus
    spk = {s: set(d.utt2spk.values()) for s, d in dirs.items()}
    text = {s: set(d.text.values()) for s, d in dirs.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not spk[a] & spk[b], (a, b)
        assert not text[a] & text[b], (a, b)
    assert len(spk["test"]) == syn.VOICES_PER_SET["test"]  # 20 test utterances spread over all 12 voices


def test_text_normalisation(corpus):
    _, _, dirs = corpus
    for d in dirs.values():
        for utt, t in d.text.items():
            words = t.split(" ")
            assert all(WORD_RE.match(w) for w in words), (utt, t)
            assert syn.MIN_WORDS <= len(words) <= syn.MAX_WORDS, (utt, t)
            assert not re.search(r"[0-9A-Z.,;:!?\"-]", t)


def test_audio_format_level_and_durations(corpus):
    _, _, dirs = corpus
    for d in dirs.values():
        for utt in d.utt_ids:
            info = sf.info(d.wav_scp[utt])
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
            x, sr = sf.read(d.wav_scp[utt], dtype="float32")
            assert abs(len(x) / sr - d.utt2dur[utt]) < 1e-3, utt
            assert 1.0 < d.utt2dur[utt] < 12.0, utt
            peak_db = 20 * np.log10(np.max(np.abs(x)))
            assert -3.2 < peak_db < -2.8, (utt, peak_db)
            assert np.sqrt(np.mean(x ** 2)) > 0.02, utt  # speech, not silence
            margin = int(0.08 * sr)  # trimmed to a 100 ms margin: the edges are (near) silent
            assert np.max(np.abs(x[:margin])) < 0.01 and np.max(np.abs(x[-margin:])) < 0.01, utt


def test_same_seed_gives_identical_bytes_whatever_num_jobs(corpus, tmp_path):
    data, wav, _ = corpus
    syn.prepare_mini(tmp_path / "data", tmp_path / "wav", seed=0, num_jobs=1, **SMALL)
    a, b = _all_files(wav), _all_files(tmp_path / "wav")
    assert a.keys() == b.keys() and a == b
    for split in syn.SETS:
        for f in ("text", "utt2spk", "spk2utt", "utt2dur", "spk2gender"):
            assert (data / split / f).read_bytes() == (tmp_path / "data" / split / f).read_bytes(), (split, f)
    assert (data / "voices.json").read_bytes() == (tmp_path / "data" / "voices.json").read_bytes()


def test_rerun_is_a_noop_and_resumes_missing_wavs(corpus, monkeypatch):
    data, wav, dirs = corpus
    before = {p: p.stat().st_mtime_ns for p in wav.rglob("*.wav")}
    victim = Path(dirs["dev"].wav_scp[dirs["dev"].utt_ids[3]])
    content = victim.read_bytes()
    victim.unlink()
    synthesised: list[str] = []
    real = syn.synthesize_all
    # synthesize_set looks synthesize_all up in the jobs module (the package only re-exports it)
    monkeypatch.setattr(syn.jobs, "synthesize_all",
                        lambda specs, *a, **k: synthesised.extend(s.utt for s in specs) or real(specs, *a, **k))
    syn.prepare_mini(data, wav, seed=0, num_jobs=1, **SMALL)
    assert synthesised == [victim.stem]
    assert victim.read_bytes() == content
    after = {p: p.stat().st_mtime_ns for p in wav.rglob("*.wav") if p != victim}
    assert all(after[p] == t for p, t in before.items() if p != victim)


def test_cli_prepare_mini(corpus):
    from specenh.cli import main

    data, wav, _ = corpus
    args = ["prepare-mini", "--out-dir", str(data), "--wav-dir", str(wav), "--num-train", "40", "--num-dev", "10",
            "--num-test", "20", "--nj", "1"]
    assert main(args) == 0


def test_missing_library_is_reported_with_its_path(tmp_path):
    with pytest.raises(syn.EspeakError, match=re.escape(str(tmp_path / "libespeak-ng.so"))):
        syn.Espeak(str(tmp_path / "libespeak-ng.so"), str(tmp_path))


# --- text generator and voices alone -----------------------------------------------

def test_text_generator_full_scale():
    counts = {"train": 3000, "dev": 200, "test": 300}
    sents = syn.generate_sentences(0, counts)
    assert {k: len(v) for k, v in sents.items()} == counts
    stats = syn.text_stats(sents)
    assert stats["distinct_sentences"] == 3500 >= 2000
    assert stats["vocabulary"] >= 800
    assert stats["test_oov_rate"] < 0.03
    assert 8 <= stats["mean_words"] <= 12
    texts = {k: {s.text for s in v} for k, v in sents.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    for v in sents.values():
        for s in v:
            assert all(WORD_RE.match(w) for w in s.text.split(" ")), s.text
            assert syn.MIN_WORDS <= len(s.text.split()) <= syn.MAX_WORDS
    # the test set depends only on the seed and its own size
    assert syn.generate_sentences(0, {"train": 50, "test": 300})["test"] == sents["test"]
    assert syn.generate_sentences(1, {"test": 300})["test"] != sents["test"]


def test_number_words_and_articles():
    assert syn.number_words(7) == "seven"
    assert syn.number_words(21) == "twenty one"
    assert syn.number_words(90) == "ninety"
    assert syn.number_words(305) == "three hundred and five"
    assert syn.ordinal_words(22) == "twenty second"
    assert syn.ordinal_words(30) == "thirtieth"
    assert [syn.article(w) for w in ("apple", "hour", "useful", "unhappy", "box", "old")] == \
        ["an", "an", "a", "an", "a", "an"]
    v = syn.verb("stop:stopped")
    assert (v.past, v.third, v.ing) == ("stopped", "stops", "stopping")
    v = syn.verb("carry")
    assert (v.past, v.third, v.ing) == ("carried", "carries", "carrying")
    assert syn.pluralize("box") == "boxes" and syn.pluralize("story") == "stories"


def test_voices_disjoint_gendered_and_shipped():
    voices = syn.build_voices(0)
    allv = [v for vs in voices.values() for v in vs]
    assert len(allv) >= 60
    assert len({v.vid for v in allv}) == len(allv)
    pairs = {s: {(v.accent, v.variant) for v in vs} for s, vs in voices.items()}
    assert not pairs["train"] & pairs["test"] and not pairs["train"] & pairs["dev"] and not pairs["dev"] & pairs["test"]
    for vs in voices.values():
        assert {v.gender for v in vs} == {"m", "f"}
        assert all(120 <= v.rate <= 185 and 30 <= v.pitch <= 75 for v in vs)
    assert len({(v.rate, v.pitch, v.pitch_range) for v in allv}) > 50
    _, data_path = syn.espeak_paths()
    syn.check_voices(allv, data_path)
    with pytest.raises(syn.EspeakError, match="nosuchvariant"):
        syn.check_voices([syn.Voice("v999", "en-us", "nosuchvariant", "m", 150, 50, 50, 0, "train")], data_path)
