"""Scoring: text normalisation, WER/CER against jiwer, alignments, bootstrap CIs, writers and the CLI."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest

from specenh.cli import main as specenh_main
from specenh.metrics.textnorm import NORMALIZER_DESCRIPTION, NORMALIZER_VERSION, normalize_text
from specenh.metrics.wer import (
    ScoringError,
    bootstrap_ci,
    format_result_txt,
    load_scores,
    paired_bootstrap,
    score,
    write_results,
)

PAIRS = {  # utt: (reference, hypothesis), raw text as a corpus and an ASR would give it
    "utt01": ("The cat sat on the mat.", "the cat sat on a mat"),
    "utt02": ("Don’t stop believing!", "dont stop believing"),
    "utt03": ("It was a well-known fact, in 1984.", "it was a well known fact in nineteen eighty four"),
    "utt04": ("HELLO world", "hello world"),
    "utt05": ("one two three four five", "one three four five six seven"),
    "utt06": ("Mr. Smith's dog barked", "mister smiths dog"),
}


def _refs_hyps(pairs: dict[str, tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    return {u: r for u, (r, _) in pairs.items()}, {u: h for u, (_, h) in pairs.items()}


# ---------------------------------------------------------------- normaliser


@pytest.mark.parametrize("raw, expected", [
    ("Hello, World!", "hello world"),
    ("Don’t stop", "don't stop"),              # curly apostrophe -> straight, kept inside the word
    ("‘quoted’ words' 'tis", "quoted words tis"),  # apostrophes at word edges are dropped
    ("well-known — state-of-the-art", "well known state of the art"),
    ("Room 101, 3.5 kg", "room 101 3 5 kg"),   # digits kept as-is, punctuation splits
    ("  many   \t spaces\n", "many spaces"),
    ("ＦＵＬＬ ｗｉｄｔｈ １２", "full width 12"),  # NFKC
    ("ﬁne", "fine"),                            # NFKC ligature
    ("Ça va? Straße", "ça va straße"),           # letters outside ASCII are kept
    ("...!?", ""),
])
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_is_idempotent() -> None:
    for r, h in PAIRS.values():
        for s in (r, h):
            assert normalize_text(normalize_text(s)) == normalize_text(s)


# ---------------------------------------------------------------- scores vs jiwer


def test_corpus_wer_and_cer_equal_jiwer_after_normalisation() -> None:
    refs, hyps = _refs_hyps(PAIRS)
    res = score(refs, hyps, n_boot=0)
    ids = sorted(PAIRS)
    r_norm = [normalize_text(refs[u]) for u in ids]
    h_norm = [normalize_text(hyps[u]) for u in ids]
    assert res.utt_ids == ids
    assert res.wer == pytest.approx(jiwer.wer(r_norm, h_norm), abs=1e-12)
    assert res.cer == pytest.approx(jiwer.cer(r_norm, h_norm), abs=1e-12)  # spaces counted, as jiwer
    assert res.num_utts == len(PAIRS)
    assert res.words.ref_lengths.sum() == sum(len(r.split()) for r in r_norm)
    assert res.chars.ref_lengths.sum() == sum(len(r) for r in r_norm)
    # per-utterance counts add up to jiwer's corpus counts
    wout = jiwer.process_words(r_norm, h_norm)
    assert res.words.totals()["substitutions"] == wout.substitutions
    assert res.words.totals()["deletions"] == wout.deletions
    assert res.words.totals()["insertions"] == wout.insertions
    assert res.words.totals()["hits"] == wout.hits
    # and every utterance alone matches jiwer too
    for i, u in enumerate(ids):
        assert res.words.errors[i] / res.words.ref_lengths[i] == pytest.approx(jiwer.wer(r_norm[i], h_norm[i]))


def test_hand_checked_counts() -> None:
    # ref: a b c d e f g ; hyp: a x c e f g h -> b->x (S), d deleted (D), h inserted (I), a c e f g correct;
    # any other alignment costs more (e.g. shifting d..g into substitutions costs 5)
    res = score({"u": "a b c d e f g"}, {"u": "a x c e f g h"}, n_boot=0)
    t = res.words.totals()
    assert (t["hits"], t["substitutions"], t["deletions"], t["insertions"]) == (5, 1, 1, 1)
    assert t["num_ref"] == 7
    assert res.wer == pytest.approx(3 / 7)
    assert res.word_alignments[0] == [("C", "a", "a"), ("S", "b", "x"), ("C", "c", "c"), ("D", "d", None),
                                      ("C", "e", "e"), ("C", "f", "f"), ("C", "g", "g"), ("I", None, "h")]
    # characters, spaces included: "a b c d e f g" (13 chars) -> "a x c e f g h" (13 chars): the
    # distance is 5 (e.g. 5 position-wise substitutions, or b->x + "d " deleted + " h" inserted)
    c = res.chars.totals()
    assert c["num_ref"] == 13
    assert c["errors"] == 5
    assert res.cer == pytest.approx(5 / 13)


def test_empty_reference_raises_naming_the_utterance() -> None:
    with pytest.raises(ValueError, match="utt_empty"):
        score({"utt_ok": "hello", "utt_empty": " ?! "}, {"utt_ok": "hello", "utt_empty": "something"})


def test_empty_hypothesis_is_all_deletions() -> None:
    res = score({"a": "one two three", "b": "four five"}, {"a": "", "b": "four five"}, n_boot=0)
    i = res.utt_ids.index("a")
    assert res.words.deletions[i] == 3 and res.words.errors[i] == 3 and res.words.hits[i] == 0
    assert res.words.errors[i] / res.words.ref_lengths[i] == 1.0
    assert res.chars.deletions[i] == len("one two three")
    assert res.wer == pytest.approx(3 / 5)


def test_missing_and_extra_hypotheses_raise_listing_ids() -> None:
    refs = {"u1": "a", "u2": "b", "u3": "c"}
    with pytest.raises(ScoringError, match=r"'u2'.*'u3'"):
        score(refs, {"u1": "a"})
    with pytest.raises(ScoringError, match="no reference: 'zz'"):
        score(refs, {"u1": "a", "u2": "b", "u3": "c", "zz": "d"})


# ---------------------------------------------------------------- bootstrap


def _simulated(n_utts: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance reference lengths and word errors at ~15% WER."""
    lens = rng.integers(5, 30, size=n_utts)
    errs = rng.binomial(lens, 0.15)
    return errs, lens


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_utterances() -> None:
    rng = np.random.default_rng(123)
    widths = {}
    for n in (20, 2000):
        errs, lens = _simulated(n, rng)
        est = errs.sum() / lens.sum()
        lo, hi = bootstrap_ci(errs, lens, n_boot=1000, seed=0)
        assert lo <= est <= hi
        assert 0.0 <= lo < hi
        widths[n] = hi - lo
    # the width shrinks roughly as 1/sqrt(n): 10x for 100x more utterances
    assert widths[2000] < widths[20] / 4


def test_bootstrap_ci_is_seeded_and_validates() -> None:
    errs, lens = _simulated(50, np.random.default_rng(0))
    assert bootstrap_ci(errs, lens, seed=7) == bootstrap_ci(errs, lens, seed=7)
    with pytest.raises(ValueError):
        bootstrap_ci(errs, lens[:-1])
    with pytest.raises(ValueError):
        bootstrap_ci(errs, np.zeros_like(lens))


def test_paired_bootstrap_clear_improvement_and_identical_systems() -> None:
    rng = np.random.default_rng(1)
    lens = rng.integers(5, 30, size=300)
    errs_a = rng.binomial(lens, 0.20)
    errs_b = rng.binomial(lens, 0.10)
    better = paired_bootstrap(errs_a, errs_b, lens, n_boot=1000, seed=0)
    assert better["p_value"] < 0.01
    assert better["delta"] > 0 and better["ci_delta"][0] > 0
    assert better["delta"] == pytest.approx(errs_a.sum() / lens.sum() - errs_b.sum() / lens.sum())
    # B worse than A: the improvement is almost surely not there
    worse = paired_bootstrap(errs_b, errs_a, lens, n_boot=1000, seed=0)
    assert worse["p_value"] > 0.99 and worse["p_worse"] < 0.01 and better["p_worse"] > 0.99
    # identical systems: never better (ties count against B)
    same = paired_bootstrap(errs_a, errs_a, lens, n_boot=500, seed=0)
    assert same["p_value"] >= 0.3 and same["delta"] == 0.0
    assert same["p_worse"] == 1.0  # a tie is not worse either (the report must not call it worse)
    # B trades errors with A: one more on half the utterances, one fewer on the other half; no real
    # difference, so the resampled improvement is symmetric around 0 and p is near 0.5
    errs_c = errs_a + 1
    errs_d = errs_c + np.where(np.arange(lens.size) % 2 == 0, 1, -1)
    null = paired_bootstrap(errs_c, errs_d, lens, n_boot=1000, seed=0)
    assert null["delta"] == 0.0
    assert 0.3 <= null["p_value"] <= 0.7
    assert null["ci_delta"][0] < 0 < null["ci_delta"][1]


# ---------------------------------------------------------------- writers


def test_result_txt_aligned(tmp_path: Path) -> None:
    refs, hyps = {"u": "the cat sat on the mat"}, {"u": "oh the cat set on mat"}
    res = score(refs, hyps, n_boot=100)
    write_results(tmp_path, refs, hyps, res)
    txt = (tmp_path / "result.txt").read_text(encoding="utf-8")
    assert txt == format_result_txt(res)
    lines = txt.splitlines()
    ref_line = next(ln for ln in lines if ln.startswith("REF:"))
    hyp_line = next(ln for ln in lines if ln.startswith("HYP:"))
    assert len(ref_line) == len(hyp_line)
    assert ref_line.split()[1:] == ["***", "the", "cat", "SAT", "on", "THE", "mat"]
    assert hyp_line.split()[1:] == ["OH", "the", "cat", "SET", "on", "***", "mat"]
    # every token starts in the same column on both lines
    ref_cols = [m.start() for m in re.finditer(r"(?<= )\S", ref_line)]
    hyp_cols = [m.start() for m in re.finditer(r"(?<= )\S", hyp_line)]
    assert ref_cols == hyp_cols
    assert "Scores: (#C #S #D #I) 4 1 1 1" in txt
    assert "id: (u)" in txt and "SUMMARY" in txt and f"v{NORMALIZER_VERSION}" in txt


def test_written_files_and_scores_round_trip(tmp_path: Path) -> None:
    refs, hyps = _refs_hyps(PAIRS)
    res = score(refs, hyps, n_boot=200, seed=3)
    write_results(tmp_path, refs, hyps, res)
    loaded = load_scores(tmp_path / "scores.json")
    assert loaded == res.to_scores()
    assert load_scores(tmp_path) == loaded
    assert loaded["wer"] == res.wer and loaded["num_ref_words"] == int(res.words.ref_lengths.sum())
    assert loaded["ci_wer"][0] <= loaded["wer"] <= loaded["ci_wer"][1]
    assert loaded["ci_cer"][0] <= loaded["cer"] <= loaded["ci_cer"][1]
    assert loaded["normalizer"]["description"] == NORMALIZER_DESCRIPTION
    assert loaded["normalizer"]["version"] == NORMALIZER_VERSION
    for key in ("substitutions", "deletions", "insertions", "hits", "num_utts"):
        assert isinstance(loaded[key], int)
    rows = [json.loads(ln) for ln in (tmp_path / "hyp.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["utt_id"] for r in rows] == sorted(PAIRS)
    assert rows[0] == {"utt_id": "utt01", "text": PAIRS["utt01"][0], "pred_text": PAIRS["utt01"][1]}
    trn = (tmp_path / "hyp.trn").read_text(encoding="utf-8").splitlines()
    assert trn[0] == "the cat sat on a mat (utt01)"
    kaldi = (tmp_path / "ref.text").read_text(encoding="utf-8").splitlines()
    assert kaldi[1] == "utt02 don't stop believing"
    with pytest.raises(ValueError, match="not a specenh scores.json"):
        (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
        load_scores(tmp_path / "bad.json")


# ---------------------------------------------------------------- CLI


def _write_text_file(path: Path, mapping: dict[str, str]) -> Path:
    path.write_text("".join(f"{k} {v}".rstrip() + "\n" for k, v in mapping.items()), encoding="utf-8")
    return path


def test_cli_score_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refs, hyps = _refs_hyps(PAIRS)
    hyps["utt04"] = ""  # an empty decoding result is a valid hypothesis
    ref_f = _write_text_file(tmp_path / "ref", refs)
    hyp_f = _write_text_file(tmp_path / "hyp", hyps)
    out = tmp_path / "score"
    rc = specenh_main(["score", "--ref", str(ref_f), "--hyp", str(hyp_f), "--out-dir", str(out),
                       "--n-boot", "100", "--seed", "1"])
    assert rc == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("WER ") and "\n" not in line
    scores = load_scores(out)
    assert scores["wer"] == pytest.approx(score(refs, hyps, n_boot=0).wer)
    assert scores["bootstrap"]["n_boot"] == 100 and scores["bootstrap"]["seed"] == 1
    for name in ("result.txt", "ref.trn", "hyp.trn", "ref.text", "hyp.text", "hyp.jsonl", "scores.json"):
        assert (out / name).is_file(), name

    rc = specenh_main(["compare", "--ref", str(ref_f), "--hyp-a", str(hyp_f), "--hyp-b", str(ref_f),
                       "--n-boot", "200"])
    assert rc == 0
    cmp = json.loads(capsys.readouterr().out)
    assert cmp["rate_b"] == 0.0 and cmp["delta"] == pytest.approx(scores["wer"]) and cmp["p_value"] == 0.0

    # a missing hypothesis is an error exit, not a traceback
    _write_text_file(hyp_f, {k: v for k, v in hyps.items() if k != "utt02"})
    assert specenh_main(["score", "--ref", str(ref_f), "--hyp", str(hyp_f), "--out-dir", str(out)]) == 1
