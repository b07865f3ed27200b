"""Stage 6 report from decode dirs made by the real merge/score code (hypotheses written by hand)."""
from __future__ import annotations

import json
from pathlib import Path

from specenh.data.kaldi import write_kv
from specenh.stages.decode import merge_and_score
from specenh.report.results import _variants, write_report

REFS = {f"u{i:02d}": "the cat sat on the mat" for i in range(20)}


def _decode(root: Path, set_name: str, fe: str, n_wrong: int) -> None:
    """A finished decode of ``set_name`` by ``fe`` with ``n_wrong`` utterances missing one word."""
    feats = root / "dump" / set_name
    feats.mkdir(parents=True, exist_ok=True)
    write_kv(feats / "text", REFS)
    out = root / "decode" / f"{set_name}_{fe}"
    (out / ".done").mkdir(parents=True)
    hyps = {u: ("the cat sat on mat" if i < n_wrong else r) for i, (u, r) in enumerate(REFS.items())}
    write_kv(out / "hyp.1", hyps)
    (out / "timing.1.json").write_text(json.dumps({"audio_s": 20.0, "enhance_s": 0.1, "decode_s": 0.2}))
    (out / ".done" / "decode.1").touch()
    merge_and_score(feats, out, nj=1, frontend=f"exp/frontend_{fe}/model.pt" if fe != "identity" else fe,
                    n_boot=200)


def test_variants_are_found_by_name():
    assert _variants(["identity", "stylegan", "stylegan_nocx", "stylegan_psi0.5", "mask"]) == {
        "stylegan_nocx": "stylegan", "stylegan_psi0.5": "stylegan"}
    assert _variants(["identity", "mask_causal"]) == {}  # no base listed: a front-end of its own


def test_report_tables(tmp_path):
    wrong = {"identity": (2, 12, 16), "stylegan": (2, 4, 6), "stylegan_nocx": (2, 10, 14), "specsub": (3, 11, 15)}
    for fe, (clean, n5, n0) in wrong.items():
        _decode(tmp_path, "test", fe, clean)
        _decode(tmp_path, "test_noise_5db", fe, n5)
        _decode(tmp_path, "test_noise_0db", fe, n0)
    resynth = tmp_path / "resynth" / "test_noise_5db_specsub"
    resynth.mkdir(parents=True)
    m = {k: {"mean": v} for k, v in {"pesq": 1.5, "stoi": 0.8, "estoi": 0.6, "si_sdr": 7.0, "lsd": 3.0}.items()}
    d = {k: {"mean": v} for k, v in {"pesq": 0.2, "stoi": 0.01, "estoi": 0.02, "si_sdr": 1.5, "lsd": -0.5}.items()}
    (resynth / "summary.json").write_text(json.dumps({"set": "test_noise_5db", "frontend": "specsub", "domain": "wave",
                                                      "num_utts": 4, "metrics": {"enhanced": m},
                                                      "delta_vs_input": d}))
    out = write_report(tmp_path / "decode", tmp_path / "RESULTS.md", test_sets=["test"],
                       frontend_order=["identity", "stylegan", "stylegan_nocx", "specsub"],
                       resynth_dir=tmp_path / "resynth")
    md = out.read_text()
    main_head = "| set | condition | identity | stylegan | specsub |"
    assert md.count(main_head) == 3  # WER, CER and insertion-rate tables; the ablation is not a main column
    assert "## Ablations of `stylegan`" in md and "| set | stylegan | stylegan_nocx |" in md
    # WER of identity on noise_5db: 12 of 20 utterances miss 1 of 6 words = 10.0%; the mean of the two
    # degraded conditions for identity is (10.0 + 13.3) / 2 = 11.7
    assert "| test_noise_5db | noise_5db | 10.0 [" in md
    assert "| **mean of degraded** | 2 conditions | 11.7 | 4.2 | 10.8 |" in md
    # the paired matrix: stylegan is better on noise_5db (8 fewer errors of 120 words = +6.7 points)
    row = [ln for ln in md.splitlines() if ln.startswith("| test_noise_5db | +")][0]
    assert row.split(" | ")[1].startswith("+6.7 (p 0.0")
    rel = [ln for ln in md.splitlines() if ln.startswith("| **mean relative reduction")][0]
    assert rel.split(" | ")[1] == "+64.6%"  # mean of 8/12 and 10/16
    assert "- noise_5db: **stylegan** helps: 10.0 -> 3.3% WER (p 0.0" in md
    assert "- clean: nothing beats the unprocessed input (1.7%; best front-end stylegan, 1.7%)" in md
    assert "- `specsub`: significantly better than identity on 0 of 2 degraded conditions; significantly worse on" in md
    assert "## Signal metrics (stage 7)" in md and "| test_noise_5db | specsub | wave | 1.50 (+0.20) |" in md


def test_front_end_decoded_on_some_conditions_gets_no_mean(tmp_path):
    for fe, ns in {"identity": (2, 12, 16), "stylegan": (2, 4, 6)}.items():
        for s, n in zip(("test", "test_noise_5db", "test_noise_0db"), ns):
            _decode(tmp_path, s, fe, n)
    _decode(tmp_path, "test_noise_5db", "mask", 3)  # mask: one of the two degraded conditions only
    md = write_report(tmp_path / "decode", tmp_path / "RESULTS.md", test_sets=["test"],
                      frontend_order=["identity", "stylegan", "mask"]).read_text()
    assert "| **mean of degraded** | 2 conditions | 11.7 | 4.2 | – |" in md
    rel = [ln for ln in md.splitlines() if ln.startswith("| **mean relative reduction")][0]
    assert rel.split(" | ")[1:] == ["+64.6%", "– |"]
    assert "- `mask`: significantly better than identity on 1 of 1 degraded conditions" in md
    assert "- `stylegan`: significantly better than identity on 2 of 2 degraded conditions" in md


def test_commands_come_from_the_run_history(tmp_path):
    """The driver appends each invocation to exp/run.history; the report lists them all, in order (the
    default run, then the longer commands), instead of only the last run of each stage."""
    import sys

    from specenh.cli import main

    for fe in ("identity", "stylegan"):
        _decode(tmp_path, "test", fe, 2)
    hist = tmp_path / "run.history"
    hist.write_text("./specenh.sh --nj 2\n./specenh.sh --nj 2 --stage 4 --frontends all\n"
                    "./specenh.sh --nj 2 --stage 4 --frontends all\n")
    stage = tmp_path / "run.stage4.sh"
    stage.write_text("#!/usr/bin/env bash\n./specenh.sh --nj 2 --stage 4 --stop-stage 4\n")
    out = tmp_path / "RESULTS.md"
    args = ["report", "--decode-dir", str(tmp_path / "decode"), "--out", str(out), "--test-sets", "test",
            "--commands", str(stage)]
    assert main(args + ["--history", str(hist)]) == 0
    md = out.read_text()
    assert "from `exp/run.history`" in md and "--stop-stage 4" not in md
    assert md.count("./specenh.sh --nj 2 --stage 4 --frontends all") == 1 and "./specenh.sh --nj 2\n" in md
    assert main(args + ["--history", str(tmp_path / "none")]) == 0  # no history: the last run of each stage
    assert "./specenh.sh --nj 2 --stage 4 --stop-stage 4" in out.read_text()


def test_sweep_conditions_get_their_own_table_not_the_means(tmp_path):
    """Sets of a severity sweep (condition.yaml with ``sweep:``) are left out of the main tables, means and
    counts, and listed in sweep order (by value, not by name) in their own table with the paired change."""
    import yaml

    for fe, ns in {"identity": (2, 12), "stylegan": (2, 4)}.items():
        for s, n in zip(("test", "test_noise_5db"), ns):
            _decode(tmp_path, s, fe, n)
    for v, n in ((10, 10), (-5, 18), (5, 14)):
        s = f"test_snr_sweep_{'m5' if v < 0 else v}"
        (tmp_path / "dump" / s).mkdir(parents=True, exist_ok=True)
        (tmp_path / "dump" / s / "condition.yaml").write_text(yaml.safe_dump(
            {"name": s[5:], "steps": [], "sweep": {"name": "snr_sweep", "param": "steps.0.snr", "value": v, "unit": "dB"}}))
        _decode(tmp_path, s, "identity", n)
        _decode(tmp_path, s, "stylegan", n // 2)
    md = write_report(tmp_path / "decode", tmp_path / "RESULTS.md", test_sets=["test"],
                      frontend_order=["identity", "stylegan"], plots_dir=tmp_path / "plots").read_text()
    assert "| **mean of degraded** | 1 conditions |" in md
    assert "- `stylegan`: significantly better than identity on 1 of 1 degraded conditions" in md
    main_wer = md.split("## WER")[1].split("## CER")[0]
    assert "sweep" not in main_wer
    sweep = md.split("## Severity sweeps")[1].split("## ")[0]
    rows = [ln.split(" | ")[0].lstrip("| ") for ln in sweep.splitlines() if ln.startswith("| test_")]
    assert rows == ["test_snr_sweep_m5", "test_snr_sweep_5", "test_snr_sweep_10"]
    assert "| test_snr_sweep_m5 | snr_sweep | -5 | 15.0 [" in sweep and "(+7.5, p " in sweep
    assert (tmp_path / "plots" / "wer_sweep_snr_sweep.png").is_file()


def test_no_empty_section():
    from specenh.report.results import drop_empty_sections

    lines = ["# T", "", "## A", "", "| x |", "", "## Empty", "", "", "## B", "text", "## Last", ""]
    assert drop_empty_sections(lines) == ["# T", "", "## A", "", "| x |", "", "## B", "text"]


def test_snr_plot_keeps_noise_families_apart(tmp_path):
    """pink-mix, white and babble sets at 5 dB are three noise families, never one zigzag line."""
    from specenh.report.results import Entry, _snr_of

    def entry(name, source, snr):
        d = tmp_path / name
        d.mkdir()
        (d / "condition.yaml").write_text(f"name: {name}\nsteps:\n  - type: noise\n    source: {source}\n"
                                          f"    snr: [{snr}]\n")
        return Entry(name, "identity", d, {"feats_dir": str(d)}, {"wer": 0.5})

    assert _snr_of(entry("n5", "[pink, babble, bursts, hum]", 5)) == (5.0, "pink+babble+bursts+hum")
    assert _snr_of(entry("w5", "white", 5)) == (5.0, "white")
    assert _snr_of(Entry("clean", "identity", tmp_path, {"feats_dir": str(tmp_path / "none")}, {})) is None
