"""Data-dir validation, repair, C-order sorting, NeMo manifests and the data-dir subcommands."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.data.cli import main as data_cli
from specenh.data.kaldi import DataDirError, c_sort_key, compute_utt2dur, load_data_dir, read_kv, write_kv
from specenh.data.manifest import ManifestError, data_dir_to_manifest, manifest_to_data_dir, read_manifest
from specenh.data.validate import fix_data_dir, validate_data_dir

SR = 16000
UTTS = {  # utt: (speaker, transcript, seconds)
    "spk1-a": ("spk1", "hello world", 0.10),
    "spk1-b": ("spk1", "good morning", 0.20),
    "spk2-a": ("spk2", "one two three", 0.15),
    "spk2-b": ("spk2", "four", 0.25),
}


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _replace_line(path: Path, lineno: int, new: str | None) -> None:
    """Replace (or delete, with None) 1-based line ``lineno``."""
    lines = _lines(path)
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    _write(path, lines)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A valid data dir: 4 utterances of 2 speakers with real wav files, text and utt2dur."""
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    for utt, (_, _, dur) in UTTS.items():
        sf.write(wav_dir / f"{utt}.wav", 0.1 * rng.standard_normal(int(dur * SR)).astype(np.float32), SR)
    _write(d / "wav.scp", [f"{u} {wav_dir / u}.wav" for u in UTTS])
    _write(d / "utt2spk", [f"{u} {s}" for u, (s, _, _) in UTTS.items()])
    _write(d / "spk2utt", ["spk1 spk1-a spk1-b", "spk2 spk2-a spk2-b"])
    _write(d / "text", [f"{u} {t}" for u, (_, t, _) in UTTS.items()])
    _write(d / "utt2dur", [f"{u} {dur:.3f}" for u, (_, _, dur) in UTTS.items()])
    return d


def _raises(d: Path, *needles: str, **kwargs) -> str:
    with pytest.raises(DataDirError) as ei:
        validate_data_dir(d, **kwargs)
    msg = str(ei.value)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in error:\n{msg}"
    return msg


# ------------------------------------------------------------------------------------- validate


def test_valid_dir_passes(data_dir: Path) -> None:
    validate_data_dir(data_dir, check_audio=True)


@pytest.mark.parametrize("name", ["wav.scp", "utt2spk", "text"])
def test_missing_required_file(data_dir: Path, name: str) -> None:
    (data_dir / name).unlink()
    _raises(data_dir, name, "missing")


def test_text_optional_with_no_text(data_dir: Path) -> None:
    (data_dir / "text").unlink()
    validate_data_dir(data_dir, require_text=False)


def test_non_utf8_line(data_dir: Path) -> None:
    raw = (data_dir / "text").read_bytes().splitlines(keepends=True)
    raw[1] = b"spk1-b caf\xe9 au lait\n"  # latin-1, not UTF-8
    (data_dir / "text").write_bytes(b"".join(raw))
    _raises(data_dir, "text:2", "UTF-8", "spk1-b")


def test_empty_transcript(data_dir: Path) -> None:
    _replace_line(data_dir / "text", 3, "spk2-a")
    _raises(data_dir, "text:3", "empty transcript", "spk2-a")


def test_empty_line(data_dir: Path) -> None:
    _replace_line(data_dir / "utt2spk", 2, "")
    _raises(data_dir, "utt2spk:2", "empty line")


def test_duplicate_id(data_dir: Path) -> None:
    lines = _lines(data_dir / "utt2spk")
    _write(data_dir / "utt2spk", lines[:2] + [lines[1]] + lines[2:])
    _raises(data_dir, "utt2spk:3", "duplicate", "spk1-b", check_sorted=False)


def test_unsorted_file(data_dir: Path) -> None:
    lines = _lines(data_dir / "wav.scp")
    _write(data_dir / "wav.scp", [lines[1], lines[0], *lines[2:]])
    _raises(data_dir, "wav.scp:2", "C order", "spk1-a")
    validate_data_dir(data_dir, check_sorted=False)


def test_locale_order_is_rejected(data_dir: Path) -> None:
    """Case-insensitive (en_US-like) order is not C order: 'B' < 'a' in bytes."""
    d = data_dir
    wav = _lines(d / "wav.scp")[0].split()[1]
    _write(d / "wav.scp", [f"a-1 {wav}", f"B-1 {wav}"])
    _write(d / "utt2spk", ["a-1 a", "B-1 B"])
    _write(d / "spk2utt", ["B B-1", "a a-1"])
    _write(d / "text", ["a-1 x", "B-1 y"])
    (d / "utt2dur").unlink()
    msg = _raises(d, "wav.scp:2", "'B-1'")
    assert "spk2utt" not in msg  # spk2utt is in C order


def test_missing_from_text_names_utterance(data_dir: Path) -> None:
    _replace_line(data_dir / "text", 2, None)
    _raises(data_dir, "text", "'spk1-b'", "wav.scp line 2", "missing")


def test_extra_utterance_in_utt2dur(data_dir: Path) -> None:
    _write(data_dir / "utt2dur", _lines(data_dir / "utt2dur") + ["spk3-z 1.0"])
    _raises(data_dir, "utt2dur:5", "'spk3-z'", "not in wav.scp")


def test_utt2spk_missing_utterance(data_dir: Path) -> None:
    _replace_line(data_dir / "utt2spk", 4, None)
    _write(data_dir / "spk2utt", ["spk1 spk1-a spk1-b", "spk2 spk2-a"])
    _raises(data_dir, "utt2spk", "'spk2-b'")


def test_spk2utt_inconsistent(data_dir: Path) -> None:
    _write(data_dir / "spk2utt", ["spk1 spk1-a spk1-b spk2-a", "spk2 spk2-b"])
    _raises(data_dir, "spk2utt:1", "'spk2-a'", "utt2spk says 'spk2'")


def test_spk2utt_missing_utterance(data_dir: Path) -> None:
    _write(data_dir / "spk2utt", ["spk1 spk1-a", "spk2 spk2-a spk2-b"])
    _raises(data_dir, "spk2utt", "'spk1-b'", "not listed")


def test_missing_wav_file(data_dir: Path) -> None:
    wav = Path(_lines(data_dir / "wav.scp")[2].split()[1])
    wav.unlink()
    _raises(data_dir, "wav.scp:3", "'spk2-a'", "not found")


def test_relative_wav_paths_resolve_from_cwd(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = data_dir.parent
    _write(data_dir / "wav.scp", [f"{u} wav/{u}.wav" for u in UTTS])
    monkeypatch.chdir(root)
    validate_data_dir("data")
    monkeypatch.chdir(data_dir)
    _raises(Path("."), "wav.scp:1", "not found")


def test_command_entries_are_not_paths(data_dir: Path) -> None:
    _replace_line(data_dir / "wav.scp", 1, "spk1-a sox /nonexistent.flac -t wav - |")
    validate_data_dir(data_dir)


@pytest.mark.parametrize("value", ["0", "-1.5", "abc", "nan", "inf"])
def test_bad_duration(data_dir: Path, value: str) -> None:
    _replace_line(data_dir / "utt2dur", 2, f"spk1-b {value}")
    _raises(data_dir, "utt2dur:2", "'spk1-b'", value)


def test_speaker_prefix_is_only_a_warning(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(data_dir / "utt2spk", [f"{u} {'x' + s}" for u, (s, _, _) in UTTS.items()])
    _write(data_dir / "spk2utt", ["xspk1 spk1-a spk1-b", "xspk2 spk2-a spk2-b"])
    with caplog.at_level(logging.WARNING):
        validate_data_dir(data_dir)
    assert "do not start with their speaker id" in caplog.text


def test_check_audio_names_utterance(data_dir: Path) -> None:
    wav = Path(_lines(data_dir / "wav.scp")[3].split()[1])
    wav.write_bytes(b"RIFF not really a wav file")
    validate_data_dir(data_dir)  # exists on disk: only check_audio opens it
    _raises(data_dir, "wav.scp:4", "'spk2-b'", check_audio=True)


def test_feats_and_num_frames(data_dir: Path) -> None:
    ark = data_dir / "feats.1.ark"
    ark.write_bytes(b"\0" * 16)
    _write(data_dir / "feats.scp", [f"{u} {ark}:{8 * i}" for i, u in enumerate(UTTS)])
    _write(data_dir / "utt2num_frames", [f"{u} {round(dur * 100) + 1}" for u, (_, _, dur) in UTTS.items()])
    validate_data_dir(data_dir)

    _replace_line(data_dir / "utt2num_frames", 3, "spk2-a 1500")  # 15 s of frames for 0.15 s of audio
    _raises(data_dir, "utt2num_frames:3", "'spk2-a'", "1500 frames")
    _replace_line(data_dir / "utt2num_frames", 3, "spk2-a 1.5")
    _raises(data_dir, "utt2num_frames:3", "'spk2-a'", "not a positive number")
    _replace_line(data_dir / "utt2num_frames", 3, "spk2-a 16")
    _replace_line(data_dir / "feats.scp", 4, None)
    _raises(data_dir, "feats.scp", "'spk2-b'", "missing")
    _write(data_dir / "feats.scp", [f"{u} {data_dir}/gone.ark:{8 * i}" for i, u in enumerate(UTTS)])
    _raises(data_dir, "feats.scp:1", "gone.ark", "not found")


def test_clean_scp_keys(data_dir: Path) -> None:
    shutil.copy(data_dir / "wav.scp", data_dir / "clean.scp")
    validate_data_dir(data_dir)
    _replace_line(data_dir / "clean.scp", 1, None)
    _raises(data_dir, "clean.scp", "'spk1-a'", "missing")


def test_speaker_files(data_dir: Path) -> None:
    _write(data_dir / "spk2gender", ["spk1 f", "spk2 m", "spk9 m"])
    _raises(data_dir, "spk2gender:3", "'spk9'")


def test_backup_copies_of_files_are_ignored(data_dir: Path) -> None:
    _write(data_dir / "utt2dur.bak", ["other-utt 1.0"])
    validate_data_dir(data_dir)


def test_segments_are_refused(data_dir: Path) -> None:
    _write(data_dir / "segments", ["spk1-a rec1 0.0 1.0"])
    _raises(data_dir, "segments", "not supported")
    with pytest.raises(DataDirError, match="segments"):
        fix_data_dir(data_dir)


def test_all_problems_reported_at_once(data_dir: Path) -> None:
    _replace_line(data_dir / "text", 1, "spk1-a")
    _replace_line(data_dir / "utt2dur", 4, "spk2-b -3")
    msg = _raises(data_dir, "text:1", "utt2dur:4")
    assert "2 problem(s)" in msg


# ------------------------------------------------------------------------------------------ fix


def _break(d: Path) -> None:
    """Unsorted, a repeated identical line, an empty transcript, missing audio, an orphan utt2dur
    entry, a bad duration, a stale spk2utt and an utterance absent from text."""
    wav_lines = _lines(d / "wav.scp")
    extra_wav = d.parent / "wav" / "spk3-a.wav"
    sf.write(extra_wav, 0.1 * np.random.default_rng(1).standard_normal(800).astype(np.float32), SR)
    _write(d / "wav.scp", [*reversed(wav_lines), wav_lines[0], f"spk3-a {extra_wav}", f"spk3-b {extra_wav}",
                           f"spk3-c {d.parent}/wav/none.wav"])
    _write(d / "utt2spk", _lines(d / "utt2spk") + ["spk3-a spk3", "spk3-b spk3", "spk3-c spk3"])
    _write(d / "text", ["spk1-a hello world", "spk1-b", "spk2-a one two three", "spk2-b four", "spk3-a x",
                        "spk3-c y"])
    _write(d / "utt2dur", _lines(d / "utt2dur") + ["spk3-a 0.05", "spk3-b 0.05", "spk3-c 0.1", "zz-orphan 1"])
    _replace_line(d / "utt2dur", 4, "spk2-b 0")
    _write(d / "spk2utt", ["spk1 spk1-a"])


def test_fix_data_dir_repairs_and_reports(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    _break(data_dir)
    originals = {n: (data_dir / n).read_bytes() for n in ("wav.scp", "text", "utt2dur", "spk2utt")}
    with pytest.raises(DataDirError):
        validate_data_dir(data_dir)
    with caplog.at_level(logging.WARNING):
        reasons = fix_data_dir(data_dir)
    assert reasons == {
        "empty transcript": ["spk1-b"],
        "invalid duration in utt2dur": ["spk2-b"],
        "missing from text": ["spk3-b"],
        "audio file not found": ["spk3-c"],
        "missing from wav.scp": ["zz-orphan"],
    }
    for utt in ("spk1-b", "spk2-b", "spk3-b", "spk3-c", "zz-orphan"):
        assert f"dropped utterance '{utt}'" in caplog.text
    validate_data_dir(data_dir, check_audio=True)
    assert _lines(data_dir / "spk2utt") == ["spk1 spk1-a", "spk2 spk2-a", "spk3 spk3-a"]
    for name, content in originals.items():
        assert (data_dir / ".backup" / name).read_bytes() == content
    assert fix_data_dir(data_dir) == {}  # idempotent


def test_fix_keeps_extra_utterance_files_in_sync(data_dir: Path) -> None:
    _write(data_dir / "utt2cond", [f"{u} noise_5db" for u in UTTS if u != "spk1-a"])
    shutil.copy(data_dir / "wav.scp", data_dir / "clean.scp")
    reasons = fix_data_dir(data_dir)
    assert reasons == {"missing from utt2cond": ["spk1-a"]}
    for name in ("wav.scp", "utt2spk", "text", "utt2dur", "clean.scp", "utt2cond"):
        assert [ln.split()[0] for ln in _lines(data_dir / name)] == ["spk1-b", "spk2-a", "spk2-b"], name
    validate_data_dir(data_dir)


def test_fix_drops_conflicting_duplicates_and_bad_encoding(data_dir: Path) -> None:
    _write(data_dir / "utt2spk", _lines(data_dir / "utt2spk") + ["spk1-a spk2"])
    with open(data_dir / "text", "ab") as f:
        f.write(b"spk2-b caf\xe9\n")
    reasons = fix_data_dir(data_dir)
    assert reasons == {"conflicting duplicate lines in utt2spk": ["spk1-a"], "invalid UTF-8 in text": ["spk2-b"]}
    validate_data_dir(data_dir)


def test_fix_refuses_to_empty_a_dir(data_dir: Path) -> None:
    _write(data_dir / "text", [f"{u}" for u in UTTS])
    broken = (data_dir / "text").read_bytes()
    with pytest.raises(DataDirError, match="no utterance would be left"):
        fix_data_dir(data_dir)
    assert (data_dir / "text").read_bytes() == broken
    assert not (data_dir / ".backup").exists()


def test_fix_needs_wav_scp(data_dir: Path) -> None:
    (data_dir / "wav.scp").unlink()
    with pytest.raises(DataDirError, match="wav.scp"):
        fix_data_dir(data_dir)


# ------------------------------------------------------------------------------------ C sorting


KEYS = ["a_b", "A", "a", "B", "a-b", "ab", "_x", "Z9", "z", "a.b", "aB", "10", "9", "\u00e9t\u00e9", "a b"]


def test_c_sort_matches_lc_all_c_sort(tmp_path: Path) -> None:
    keys = [k.replace(" ", "~") for k in KEYS]
    ours = sorted(keys, key=c_sort_key)
    src = tmp_path / "keys"
    src.write_text("".join(f"{k}\n" for k in reversed(keys)), encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C"}
    theirs = subprocess.run(["sort", str(src)], capture_output=True, env=env, check=True).stdout.decode("utf-8")
    assert theirs.splitlines() == ours


def test_write_kv_output_is_c_sorted_and_validates(data_dir: Path) -> None:
    wav = _lines(data_dir / "wav.scp")[0].split()[1]
    keys = [k.replace(" ", "~") for k in KEYS]
    write_kv(data_dir / "wav.scp", {k: wav for k in keys})
    write_kv(data_dir / "utt2spk", {k: k for k in keys})
    write_kv(data_dir / "spk2utt", {k: k for k in keys})
    write_kv(data_dir / "text", {k: "x" for k in keys})
    (data_dir / "utt2dur").unlink()
    env = {**os.environ, "LC_ALL": "C"}
    for name in ("wav.scp", "utt2spk", "text"):
        check = subprocess.run(["sort", "-c", str(data_dir / name)], env=env, capture_output=True)
        assert check.returncode == 0, check.stderr
    validate_data_dir(data_dir)


# ------------------------------------------------------------------------------------- manifest


def test_manifest_round_trip(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m" / "manifest.json"
    assert data_dir_to_manifest(data_dir, out) == len(UTTS)
    entries = list(read_manifest(out))
    assert [e["utt_id"] for e in entries] == sorted(UTTS, key=c_sort_key)
    for e in entries:
        spk, txt, dur = UTTS[e["utt_id"]]
        assert e["text"] == txt and e["duration"] == pytest.approx(dur, abs=1e-3)
        assert os.path.isabs(e["audio_filepath"]) and Path(e["audio_filepath"]).is_file()

    back = tmp_path / "back"
    manifest_to_data_dir(out, back)
    orig, again = load_data_dir(data_dir), load_data_dir(back)
    assert again.wav_scp == orig.wav_scp and again.text == orig.text
    assert again.utt2dur == pytest.approx(orig.utt2dur)
    validate_data_dir(back)


def test_manifest_durations_from_audio_without_utt2dur(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "utt2dur").unlink()
    out = tmp_path / "manifest.json"
    data_dir_to_manifest(data_dir, out)
    durs = {e["utt_id"]: e["duration"] for e in read_manifest(out)}
    assert durs == pytest.approx({u: d for u, (_, _, d) in UTTS.items()})


def test_manifest_with_features(data_dir: Path, tmp_path: Path) -> None:
    feats = tmp_path / "feats.scp"
    _write(feats, [f"{u} dump/feats.1.ark:{i * 100}" for i, u in enumerate(UTTS)])
    out = tmp_path / "manifest.json"
    data_dir_to_manifest(data_dir, out, feats_scp=feats)
    first = next(read_manifest(out))
    assert first["feature_filepath"] == os.path.abspath("dump/feats.1.ark") + ":0"


def test_manifest_unreadable_audio_names_utterance(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "utt2dur").unlink()
    Path(_lines(data_dir / "wav.scp")[1].split()[1]).write_bytes(b"junk")
    with pytest.raises(DataDirError, match="spk1-b"):
        data_dir_to_manifest(data_dir, tmp_path / "manifest.json")
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.parametrize("bad, needle", [
    ("{not json", "invalid JSON"),
    ('["a list"]', "JSON object"),
    ('{"audio_filepath": "/a.wav"}', "'duration'"),
    ('{"audio_filepath": "/a.wav", "duration": -1}', "non-negative"),
    ('{"audio_filepath": "/a.wav", "duration": 1, "text": 5}', "'text'"),
])
def test_read_manifest_errors_name_line(tmp_path: Path, bad: str, needle: str) -> None:
    path = tmp_path / "m.json"
    good = json.dumps({"audio_filepath": "/x.wav", "duration": 1.0, "text": "hi"})
    path.write_text(f"{good}\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(ManifestError) as ei:
        list(read_manifest(path))
    assert f"{path}:3" in str(ei.value) and needle in str(ei.value)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_validate_and_fix(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert data_cli(["validate-data-dir", str(data_dir)]) == 0
    _replace_line(data_dir / "text", 2, "spk1-b")
    assert data_cli(["validate-data-dir", str(data_dir)]) == 1
    assert "spk1-b" in capsys.readouterr().err
    assert data_cli(["fix-data-dir", str(data_dir)]) == 0
    assert data_cli(["validate-data-dir", "--check-audio", str(data_dir)]) == 0
    (data_dir / "text").unlink()
    assert data_cli(["validate-data-dir", str(data_dir)]) == 1
    assert data_cli(["validate-data-dir", "--no-text", str(data_dir)]) == 0


def test_cli_compute_utt2dur_and_export(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (data_dir / "utt2dur").unlink()
    assert data_cli(["compute-utt2dur", str(data_dir)]) == 0
    assert {k: float(v) for k, v in read_kv(data_dir / "utt2dur").items()} == pytest.approx(
        {u: d for u, (_, _, d) in UTTS.items()})
    assert data_cli(["export-manifest", str(data_dir), str(tmp_path / "m.json")]) == 0
    assert len(list(read_manifest(tmp_path / "m.json"))) == len(UTTS)

    Path(_lines(data_dir / "wav.scp")[2].split()[1]).write_bytes(b"junk")
    assert data_cli(["compute-utt2dur", str(data_dir)]) == 1
    assert "'spk2-a'" in capsys.readouterr().err
    with pytest.raises(DataDirError, match="spk2-a"):
        compute_utt2dur(data_dir)


def test_cli_registers_with_main_parser() -> None:
    import argparse

    from specenh.data.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["validate-data-dir", "d", "--no-text", "--check-audio"])
    assert args.no_text and args.check_audio and callable(args.func)


# ------------------------------------------------------------------ bad input (issue #19)


def _wav_of(d: Path, utt: str) -> Path:
    return Path(read_kv(d / "wav.scp")[utt])


def _truncate(wav: Path, keep: float) -> None:
    """Cut the data of ``wav`` to ``keep`` of its length, header untouched (an interrupted copy)."""
    data = wav.read_bytes()
    wav.write_bytes(data[: 44 + int(keep * (len(data) - 44))])


def test_truncated_wav_is_an_error(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue #19 item 1: header intact, data cut to 38%: libsndfile reports the shorter length."""
    wav = _wav_of(data_dir, "spk2-b")
    _truncate(wav, 0.38)
    assert sf.info(str(wav)).frames < 0.4 * 0.25 * SR  # what made it pass silently
    validate_data_dir(data_dir)  # the file exists: only --check-audio decodes it
    msg = _raises(data_dir, "wav.scp:4", "truncated audio", "'spk2-b'", str(wav), "s of 0.25 s",
                  "fix-data-dir --check-audio", check_audio=True)
    assert "(1 problem(s))" in msg  # not also a duration mismatch
    with pytest.raises(DataDirError, match=r"truncated audio \(utterance 'spk2-b'"):
        compute_utt2dur(data_dir)
    assert data_cli(["validate-data-dir", "--check-audio", str(data_dir)]) == 1
    assert "truncated audio" in capsys.readouterr().err


def test_utt2dur_mismatch_is_an_error(data_dir: Path) -> None:
    """Issue #19 item 1, second half: with utt2dur, audio of another duration is an error."""
    _replace_line(data_dir / "utt2dur", 2, "spk1-b 2.470")
    _raises(data_dir, "utt2dur:2", "'spk1-b'", "lasts 0.200 s", "utt2dur says 2.470 s", check_audio=True)


@pytest.mark.parametrize("level", [0.0, 1e-4])
def test_silent_wav_is_an_error(data_dir: Path, level: float) -> None:
    """Issue #19 item 2: all-zero and near-silent (-80 dBFS) audio."""
    wav = _wav_of(data_dir, "spk1-b")
    sf.write(wav, np.full(int(0.2 * SR), level, np.float32), SR)
    validate_data_dir(data_dir)
    _raises(data_dir, "wav.scp:2", "silent audio", "'spk1-b'", str(wav), check_audio=True)


def test_audio_too_short_for_transcript(data_dir: Path, tmp_path: Path) -> None:
    """Issue #19 item 3: 0.01 s with "hello world" is one feature frame for two words."""
    wav = _wav_of(data_dir, "spk1-a")
    sf.write(wav, 0.1 * np.random.default_rng(3).standard_normal(int(0.01 * SR)).astype(np.float32), SR)
    _replace_line(data_dir / "utt2dur", 1, "spk1-a 0.010")
    _raises(data_dir, "text:1", "'spk1-a'", "too short for its transcript", "1 feature frame(s)", "2-word")
    # without utt2dur: from the decoded audio
    (data_dir / "utt2dur").unlink()
    validate_data_dir(data_dir)  # nothing tells the length
    _raises(data_dir, "text:1", "'spk1-a'", "too short", check_audio=True)
    # the rule is conservative: 0.08 s (8 frames, 2 after 4x subsampling) holds 2 words
    sf.write(wav, 0.1 * np.random.default_rng(3).standard_normal(int(0.08 * SR)).astype(np.float32), SR)
    validate_data_dir(data_dir, check_audio=True)
    _raises(data_dir, "too short", check_audio=True, subsampling=8)
    # and utt2num_frames, when present, is the frame count used
    _write(data_dir / "utt2num_frames", [f"{u} {1 if u == 'spk2-a' else int(d * 100)}" for u, (_, _, d) in UTTS.items()])
    _raises(data_dir, "'spk2-a'", "utt2num_frames", "3-word")


def test_punctuation_only_transcript(data_dir: Path) -> None:
    """Issue #19 item 6: text the scoring normaliser empties fails at validation, not at scoring."""
    _replace_line(data_dir / "text", 3, "spk2-a ?! ... --")
    _raises(data_dir, "text:3", "'spk2-a'", "empty after the scoring normaliser", "'?! ... --'")
    dropped = fix_data_dir(data_dir)
    assert dropped == {"empty transcript after normalisation": ["spk2-a"]}
    validate_data_dir(data_dir)


def test_fix_check_audio_drops_bad_audio(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue #19 item 5: fix-data-dir --check-audio drops unreadable, empty, NaN, silent and truncated
    audio (and audio too short for its transcript), logging each with its file."""
    extra = {  # utt: how its wav is broken
        "spk3-junk": lambda p: p.write_bytes(b"RIFF junk"),
        "spk3-nan": lambda p: sf.write(p, np.full(1600, np.nan, np.float32), SR, subtype="FLOAT"),
        "spk3-silent": lambda p: sf.write(p, np.zeros(3200, np.float32), SR),
        "spk3-trunc": lambda p: (sf.write(p, 0.1 * np.ones(8000, np.float32), SR), _truncate(p, 0.5)),
        "spk3-empty": lambda p: sf.write(p, np.zeros(0, np.float32), SR),
    }
    wav_lines, spk_lines, text_lines = _lines(data_dir / "wav.scp"), _lines(data_dir / "utt2spk"), _lines(data_dir / "text")
    for utt, breaker in extra.items():
        breaker(tmp_path / "wav" / f"{utt}.wav")
        wav_lines.append(f"{utt} {tmp_path / 'wav' / utt}.wav")
        spk_lines.append(f"{utt} spk3")
        text_lines.append(f"{utt} some words")
    for name, lines in (("wav.scp", wav_lines), ("utt2spk", spk_lines), ("text", text_lines)):
        _write(data_dir / name, lines)
    (data_dir / "utt2dur").unlink()
    (data_dir / "spk2utt").unlink()
    assert fix_data_dir(data_dir) == {}  # without --check-audio the audio is not opened
    with caplog.at_level(logging.WARNING):
        dropped = fix_data_dir(data_dir, check_audio=True)
    assert sorted(u for us in dropped.values() for u in us) == sorted(extra)
    assert sorted(read_kv(data_dir / "wav.scp")) == sorted(UTTS)
    for utt, reason in (("spk3-junk", "cannot read audio"), ("spk3-nan", "NaN"), ("spk3-silent", "silent audio"),
                        ("spk3-trunc", "truncated audio"), ("spk3-empty", "empty audio")):
        assert f"dropped utterance '{utt}'" in caplog.text
        assert any(utt in r.message and reason in r.message and f"{utt}.wav" in r.message for r in caplog.records), utt
    validate_data_dir(data_dir, check_audio=True)


def test_stereo_downmix_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue #19 item 10: a stereo file is mixed down with a log line naming it (as resampling is)."""
    from specenh.data.audio import load_audio

    p = tmp_path / "st.wav"
    sf.write(p, np.stack([np.full(1600, 0.2), np.full(1600, 0.4)], axis=1).astype(np.float32), SR)
    with caplog.at_level(logging.DEBUG, logger="specenh.data.audio"):
        x, sr = load_audio(p, SR, utt="s-st")
    assert x.shape == (1600,) and np.allclose(x, 0.3, atol=1e-4)
    assert any("'s-st'" in r.message and str(p) in r.message and "2 channels to mono" in r.message
               for r in caplog.records)


def test_digit_transcripts_warn(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Digits the ASR would write as words: valid, but a warning names the count and an example."""
    _write(data_dir / "text", [f"{u} {'call 911 now' if u == 'spk1-b' else t}" for u, (_, t, _) in UTTS.items()])
    with caplog.at_level(logging.WARNING):
        validate_data_dir(data_dir)
    assert "1 of 4 transcripts contain digits" in caplog.text and "'spk1-b'" in caplog.text
    caplog.clear()
    _write(data_dir / "text", [f"{u} {t}" for u, (_, t, _) in UTTS.items()])
    with caplog.at_level(logging.WARNING):
        validate_data_dir(data_dir)
    assert "digits" not in caplog.text


def test_an_id_with_whitespace_is_named_as_such(data_dir: Path) -> None:
    lines = _lines(data_dir / "wav.scp")
    _write(data_dir / "wav.scp", [lines[0].replace("spk1-a ", "spk1 a ", 1)] + lines[1:])
    msg = _raises(data_dir, "utterance id 'spk1 a' contains whitespace")
    assert "file of utterance 'spk1' not found" not in msg
