"""Observation adding (every log-mel front-end) and per-utterance choice by the frozen ASR's confidence
(an alpha grid, the ``auto`` front-end) in stage 5."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from specenh.data.kaldi import read_kv
from specenh.features.io import FeatWriter
from specenh.frontends.base import build, observation_add, resolve

REPO = Path(__file__).resolve().parents[1]
WORDS = "the old farmer carried seven heavy baskets to market before noon".split()


def test_observation_add_domains():
    x, y = torch.full((1, 2, 3), -4.0), torch.full((1, 2, 3), 0.0)
    assert torch.equal(observation_add(x, y, 0.0), x) and torch.equal(observation_add(x, y, 1.0), y)
    assert torch.allclose(observation_add(x, y, 0.25), torch.full_like(x, -3.0))
    p = observation_add(x, y, 0.5, "power")  # log(0.5 e^-4 + 0.5 e^0)
    assert torch.allclose(p, torch.full_like(x, float(np.log(0.5 * np.exp(-4) + 0.5))))


def test_alpha_is_an_inference_option_of_every_logmel_frontend():
    fe = resolve("oracle", {"alpha": 0.5})
    x, c = torch.zeros(1, 80, 5), torch.ones(1, 80, 5)
    y, _ = fe.enhance(x, torch.tensor([5]), clean=c, clean_lengths=torch.tensor([5]))
    assert torch.allclose(y, torch.full_like(x, 0.5))
    grid = resolve("oracle", {"alpha": "0,0.5,1"})
    cands = grid.candidates(x, torch.tensor([5]), clean=c, clean_lengths=torch.tensor([5]))
    assert [lab for lab, _, _ in cands] == ["alpha=0", "alpha=0.5", "alpha=1"]
    with pytest.raises(ValueError, match="needs the frozen ASR"):
        grid.enhance(x, torch.tensor([5]), clean=c, clean_lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match="waveforms"):
        resolve("specsub", {"alpha": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resolve("identity", {"alpha": 1.5})


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A tiny feature dir (+ clean) and a random tiny Conformer-CTC."""
    from specenh.asr.train import build_model, train_tokenizer
    from specenh.utils.config import load_yaml

    root = tmp_path_factory.mktemp("auto")
    rng = np.random.default_rng(0)
    for name in ("clean", "noisy"):
        d = root / name
        d.mkdir()
        with FeatWriter(d / "feats.ark", d / "feats.scp") as w:
            for i in range(5):
                t = 30 + 7 * i
                m = np.random.default_rng(i).normal(-8, 2, (t, 80)).astype(np.float32)
                w.write(f"u{i}", m if name == "clean" else m + rng.normal(0, 2, m.shape).astype(np.float32))
        (d / "utt2num_frames").write_text("".join(f"u{i} {30 + 7 * i}\n" for i in range(5)))
        (d / "text").write_text("".join(f"u{i} {' '.join(rng.choice(WORDS, 3))}\n" for i in range(5)))
    tok = train_tokenizer([" ".join(rng.choice(WORDS, size=6)) for _ in range(100)], root / "tok", vocab_size=30)
    cfg = load_yaml(REPO / "conf" / "asr" / "conformer_ctc_mini.yaml")["model"]
    cfg["encoder"].update(n_layers=1, d_model=16, n_heads=2)
    cfg["decoder"]["feat_in"] = 16
    torch.manual_seed(0)
    build_model(cfg, tok).save_to(str(root / "asr.nemo"))
    return root


def test_confidence_selection_in_stage5(tiny_set, tmp_path):
    """A grid (alpha 0 = identity, 1 = oracle) and an auto YAML decode; each utterance keeps the candidate
    with the highest confidence, which is what decoding every candidate alone and picking per utterance
    by decode_with_confidence gives; the merge reports the shares."""
    from specenh.asr.base import load_asr
    from specenh.features.io import load_feat, pad_batch, read_feats_scp
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    asr_path, noisy, clean = str(tiny_set / "asr.nemo"), tiny_set / "noisy", tiny_set / "clean"
    auto_yaml = tmp_path / "auto.yaml"
    auto_yaml.write_text("members: [identity, oracle]\n")
    for spec, opts, labels in (("oracle", ["alpha=0,1"], {"alpha=0", "alpha=1"}),
                               (str(auto_yaml), None, {"identity", "oracle"})):
        out = tmp_path / Path(spec).stem
        decode_job(noisy, spec, asr_path, out, frontend_opts=opts, clean_feats_dir=clean)
        info = merge_and_score(noisy, out, nj=1, frontend=spec, asr_model=asr_path, n_boot=10)
        choice = read_kv(out / "choice")
        assert set(choice) == {f"u{i}" for i in range(5)} and set(choice.values()) <= labels
        assert sum(info["choices"].values()) == pytest.approx(1.0)
        # the same choice by hand
        asr = load_asr(asr_path)
        utts = sorted(choice)
        xs = [read_feats_scp(d / "feats.scp") for d in (noisy, clean)]
        hyps = read_kv(out / "hyp", allow_empty_value=True)
        for u in utts:
            outs = [asr.decode_with_confidence(*pad_batch([load_feat(f, u)])) for f in xs]
            k = int(np.argmax([float(c[0]) for _, c in outs]))
            assert hyps[u] == outs[k][0][0]
            assert choice[u] == sorted(labels)[k]
    assert json.loads((tmp_path / "auto" / "decode_info.json").read_text())["choices"]


def test_auto_needs_the_asr_and_known_members(tmp_path):
    fe = build({"name": "auto", "members": ["identity", "oracle"]})
    assert [lab for lab, _ in fe.members()] == ["identity", "oracle"]
    with pytest.raises(ValueError, match="stage 5"):
        fe.enhance(torch.zeros(1, 80, 4), torch.tensor([4]))
    with pytest.raises(ValueError, match="member 'exp/frontend_nope/model.pt'"):
        build({"name": "auto", "members": ["identity", "exp/frontend_nope/model.pt"]})


def test_report_shows_choice_shares_oracle_selection_and_insertions(tiny_set, tmp_path):
    from specenh.report.results import write_report
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    asr_path, noisy, clean = str(tiny_set / "asr.nemo"), tiny_set / "noisy", tiny_set / "clean"
    auto_yaml = tmp_path / "auto.yaml"
    auto_yaml.write_text("members: [identity, oracle]\n")
    dec = tmp_path / "exp" / "decode"
    infos = {}
    for name, spec in (("identity", "identity"), ("oracle", "oracle"), ("auto", str(auto_yaml))):
        out = dec / f"noisy_{name}"
        decode_job(noisy, spec, asr_path, out, clean_feats_dir=clean)
        infos[name] = merge_and_score(noisy, out, nj=1, frontend=spec, asr_model=asr_path, n_boot=10)
    assert infos["auto"]["members"] == ["identity", "oracle"]
    md = write_report(dec, tmp_path / "RESULTS.md", test_sets=["noisy"]).read_text()
    assert "## Insertion rate" in md and "## Per-utterance choice of `auto`" in md
    row = next(l for l in md.splitlines() if l.startswith("| noisy | ") and "%" in l and l.count("|") == 6)
    wer, orc = (float(c) for c in row.split("|")[2:4])
    assert orc <= min(100 * infos["identity"]["wer"], 100 * infos["oracle"]["wer"]) + 1e-6 and wer >= orc


def test_oracle_decodes_each_set_once(tiny_set, tmp_path, caplog):
    """The oracle ignores its input: a job over several conditions of one set decodes the clean features
    once and gives every condition the same hypotheses as decoding it alone."""
    import shutil

    from specenh.stages.decode import decode_job

    asr_path, clean = str(tiny_set / "asr.nemo"), tiny_set / "clean"
    noisy2 = tmp_path / "noisy2"
    shutil.copytree(tiny_set / "noisy", noisy2)
    alone = tmp_path / "alone"
    decode_job(tiny_set / "noisy", "oracle", asr_path, alone, clean_feats_dir=clean)
    outs = [tmp_path / "o1", tmp_path / "o2"]
    with caplog.at_level("INFO", logger="specenh.stages.decode"):
        decode_job([tiny_set / "noisy", noisy2], "oracle", asr_path, outs, clean_feats_dir=clean)
    assert any("hypotheses of" in r.getMessage() and "reused" in r.getMessage() for r in caplog.records)
    ref = (alone / "hyp.1").read_bytes()
    assert all((o / "hyp.1").read_bytes() == ref for o in outs)
    assert json.loads((outs[1] / "timing.1.json").read_text())["reused_from"] == str(outs[0])
    caplog.clear()  # a front-end that reads its input is decoded per set
    with caplog.at_level("INFO", logger="specenh.stages.decode"):
        decode_job([tiny_set / "noisy", noisy2], "identity", asr_path, [tmp_path / "i1", tmp_path / "i2"])
    assert not any("reused" in r.getMessage() for r in caplog.records)


def test_training_config_inference_block_is_the_checkpoints_default(tmp_path):
    """A training config's ``inference:`` (e.g. egs/mini stylegan's alpha grid) travels in model.pt; a
    variant's ``inference:`` overrides it (``alpha: null``: observation adding off)."""
    from specenh.frontends.base import load
    from specenh.train.cli import set_inference_defaults

    ck = tmp_path / "exp" / "frontend_inpaint" / "model.pt"
    ck.parent.mkdir(parents=True)
    build({"name": "inpaint", "channels": [4]}).save(ck)
    assert load(ck).obs_alpha is None
    t0 = ck.stat().st_mtime_ns
    set_inference_defaults(ck, {})  # nothing to store: the file is not rewritten
    assert ck.stat().st_mtime_ns == t0
    set_inference_defaults(ck, {"alpha": [0.0, 0.5, 1.0]})
    fe = load(ck)
    assert fe.obs_alpha == [0.0, 0.5, 1.0] and fe.obs_domain == "logmel"
    t1 = ck.stat().st_mtime_ns
    set_inference_defaults(ck, {"alpha": [0.0, 0.5, 1.0]})  # unchanged: not rewritten (stage 5 fingerprints)
    assert ck.stat().st_mtime_ns == t1
    x = torch.randn(1, 80, 16)
    assert len(fe.candidates(x, torch.tensor([16]))) == 3
    off = tmp_path / "off.yaml"
    off.write_text(f"checkpoint: {ck}\ninference: {{alpha: null}}\n")
    assert resolve(off).obs_alpha is None
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(f"checkpoint: {ck}\ninference: {{alpha: 0.25}}\n")
    assert resolve(fixed).obs_alpha == [0.25]


def test_later_stages_show_the_candidate_stage5_chose():
    """Stage 7 (resynth, panels) takes, per utterance, the alpha stage 5 decoded (its ``choice`` file)."""
    from specenh.stages.batch_enhancer import pick_choices, run_frontend

    fe = resolve("oracle", {"alpha": [0.0, 1.0]})
    x, clean = torch.zeros(2, 80, 6), torch.ones(2, 80, 6)
    lens = torch.tensor([6, 4])
    y, yl = run_frontend(fe, x, lens, ["a", "b"], clean=lambda: (clean, lens), choices={"a": "alpha=1", "b": "alpha=0"})
    assert yl.tolist() == [6, 4] and y[0].eq(1).all() and y[1].eq(0).all()
    with pytest.raises(ValueError, match="run stage 5"):
        pick_choices([("alpha=0", x, lens), ("alpha=1", x, lens)], ["a", "b"], {"a": "alpha=1"})
    one = pick_choices([("", x, lens)], ["a", "b"], {})
    assert one[0] is x


def test_select_by_confidence_keeps_the_fallback_within_the_margin():
    from specenh.frontends.auto import check_margin, select_by_confidence

    conf = torch.tensor([[0.50, 0.50, 0.90, 0.50],   # candidate 0: the fallback (identity)
                         [0.52, 0.50, 0.80, 0.75],
                         [0.40, 0.40, 0.95, 0.70]])
    assert select_by_confidence(conf, 0.0) == [1, 0, 2, 1]  # argmax, ties to the first
    assert select_by_confidence(conf, 0.03) == [0, 0, 2, 1]  # a 0.02 gain is kept out; 0.05 and 0.25 pass
    assert select_by_confidence(conf, 0.25) == [0, 0, 0, 0]  # a gain equal to the margin is not enough
    assert select_by_confidence(conf, 1.0) == [0, 0, 0, 0]
    assert select_by_confidence(conf[:1], 0.5) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_margin(1.5)
    with pytest.raises(ValueError, match="margin"):
        build({"name": "auto", "members": ["identity"], "margin": "x"})


def _cands(name, conf, errors, ref_len=10):
    from specenh.frontends.auto_tune import SetCandidates

    conf, errors = np.asarray(conf, float), np.asarray(errors)
    return SetCandidates(name, ["identity", "fe"], conf, errors, np.full(len(conf), ref_len))


def test_tune_margin_lowest_mean_wer_that_harms_no_set():
    """Margin 0 is best on average but worse than identity on 'clean'; the rule keeps the smallest margin
    that does no harm on any set, even with a higher mean than margin 0."""
    from specenh.frontends.auto_tune import format_table, tune_margin

    # noisy: fe is more confident by 0.2 and right; clean: fe more confident by 0.04 and wrong
    noisy = _cands("noisy", [[0.5, 0.7]] * 4, [[5, 1]] * 4)
    clean = _cands("clean", [[0.80, 0.84]] * 4, [[1, 3]] * 4)
    res = tune_margin([noisy, clean], [0, 0.02, 0.05, 0.3])
    assert res.margins == [0, 0.02, 0.05, 0.3, 1.0]
    assert res.wer["noisy"] == pytest.approx([0.1, 0.1, 0.1, 0.5, 0.5])
    assert res.wer["clean"] == pytest.approx([0.3, 0.3, 0.1, 0.1, 0.1])
    assert res.margin == 0.05 and res.fallback == "identity"
    assert res.fallback_wer == pytest.approx({"noisy": 0.5, "clean": 0.1})
    assert "<- kept" in format_table(res).splitlines()[2 + 2]
    # nothing ever helps: ties at the fallback's WER go to the largest margin (it changes least)
    same = _cands("same", [[0.5, 0.9]] * 2, [[2, 2]] * 2)
    assert tune_margin([same], [0, 0.1]).margin == 1.0
    with pytest.raises(ValueError, match="no validation sets"):
        tune_margin([])


def test_tune_auto_from_validation_decodes_then_decode_with_the_tuned_yaml(tiny_set, tmp_path):
    """Stage 4's path: decode the validation set with every candidate logged, tune the margin from
    candidates.jsonl, write the tuned YAML; decoding with it gives what the logged candidates predict."""
    from specenh.cli import main as cli_main
    from specenh.frontends.auto_tune import load_set
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    asr_path, noisy, clean = str(tiny_set / "asr.nemo"), tiny_set / "noisy", tiny_set / "clean"
    conf = tmp_path / "auto.yaml"
    conf.write_text("members: [identity, oracle]\ntune: {margins: [0, 0.001, 0.01], first_look: [0.9, 0.5, 0.1]}\n")
    valid = tmp_path / "valid"
    decode_job(noisy, str(conf), asr_path, valid, clean_feats_dir=clean, nj=2, job=1)
    decode_job(noisy, str(conf), asr_path, valid, clean_feats_dir=clean, nj=2, job=2)
    merge_and_score(noisy, valid, nj=2, frontend=str(conf), asr_model=asr_path, n_boot=10)
    recs = [json.loads(l) for l in (valid / "candidates.jsonl").read_text().splitlines()]
    assert [r["utt"] for r in recs] == [f"u{i}" for i in range(5)]
    assert all(r["labels"] == ["identity", "oracle"] and len(r["conf"]) == 2 == len(r["hyps"]) for r in recs)
    hyps = read_kv(valid / "hyp", allow_empty_value=True)
    assert all(hyps[r["utt"]] == r["hyps"][int(np.argmax(r["conf"]))] for r in recs)  # margin 0: argmax
    s = load_set(valid)
    assert s.errors.shape == (5, 2) and s.wer(0.0) == pytest.approx(json.loads(
        (valid / "decode_info.json").read_text())["wer"])

    out = tmp_path / "exp" / "frontend_auto" / "auto.yaml"
    assert cli_main(["tune-auto", "--config", str(conf), "--decode-dirs", str(valid), "--out", str(out)]) == 0
    tuned = yaml_load(out)
    assert "tune" not in tuned and tuned["members"] == ["identity", "oracle"]
    m = tuned["inference"]["margin"]
    assert m in (0, 0.001, 0.01, 1.0) and tuned["tuned"]["margin"] == m and tuned["tuned"]["sets"] == ["valid"]
    assert s.wer(m) <= s.fallback_wer
    fe = resolve(out)
    assert fe.margin == m
    test = tmp_path / "test"
    decode_job(noisy, str(out), asr_path, test, clean_feats_dir=clean)
    info = merge_and_score(noisy, test, nj=1, frontend=str(out), asr_model=asr_path, n_boot=10)
    fl = tuned["inference"]["first_look"]  # tuned too: the decode follows what the log predicts with it
    assert fl in (1.0, 0.9, 0.5, 0.1) and info["first_look"] == fl
    assert info["margin"] == m and info["wer"] == pytest.approx(s.wer(m, fl)) and s.wer(m, fl) <= s.wer(m)
    assert info["first_look_skipped"] == pytest.approx(float(s.looked(m, fl).mean()))


def yaml_load(p):
    import yaml

    return yaml.safe_load(Path(p).read_text())


def test_bench_states_the_decode_cost_of_auto(tiny_set, tmp_path):
    """`specenh bench --sections stage5` with auto: the row names its candidates and gives its speed as a
    ratio to identity's in the same run (each candidate is decoded: slower)."""
    from specenh.asr.base import load_asr
    from specenh.bench.core import _stage5_rows

    auto_yaml = tmp_path / "auto.yaml"
    auto_yaml.write_text("members: [identity, oracle]\n")
    asr = load_asr(str(tiny_set / "asr.nemo"))
    rows = _stage5_rows(asr, ["identity", str(auto_yaml)], tiny_set / "noisy", tiny_set / "clean", 1, "cpu", None)
    assert [r.extra["candidates"] for r in rows] == [1, 2]
    assert "-> identity ->" in rows[0].name and "-> auto (2 candidates, each decoded) ->" in rows[1].name
    assert rows[0].ratio is None and rows[1].ratio_to == "identity"
    assert rows[1].ratio == pytest.approx(rows[1].xrt / rows[0].xrt) and rows[1].ratio > 0


def test_zero_frame_utterance_is_an_error(tiny_set, tmp_path):
    """A 0-frame utterance is refused with its name, not scored as an empty hypothesis."""
    import shutil

    from specenh.stages.decode import decode_job

    noisy = tmp_path / "noisy"
    shutil.copytree(tiny_set / "noisy", noisy)
    (noisy / "utt2num_frames").write_text((noisy / "utt2num_frames").read_text().replace("u2 44", "u2 0"))
    with pytest.raises(ValueError, match="0 frames.*'u2'"):
        decode_job(noisy, "identity", str(tiny_set / "asr.nemo"), tmp_path / "out")


def test_tune_harm_p_allows_insignificant_changes():
    """With pseudo-references the fallback scores 0 on clean: one changed word anywhere rejects every margin under
    the point rule; with harm_p only a significant loss does, and the better margin is kept."""
    from specenh.frontends.auto_tune import SetCandidates, tune_margin

    U = 30
    conf = np.tile([0.5, 0.6], (U, 1))
    clean_err = np.zeros((U, 2), dtype=np.int64)
    clean_err[0, 1] = 1  # the enhancer changes one word of one clean utterance
    noisy_err = np.tile([3, 1], (U, 1)).astype(np.int64)  # and fixes two words in every noisy one
    sets = [SetCandidates("dev", ["identity", "fe"], conf, clean_err, np.full(U, 10)),
            SetCandidates("dev_noise", ["identity", "fe"], conf, noisy_err, np.full(U, 10))]
    assert tune_margin(sets, [0.0, 0.05]).margin == 1.0
    res = tune_margin(sets, [0.0, 0.05], harm_p=0.05)
    assert res.margin == 0.05 and "significantly worse" in res.to_dict()["rule"]
    bad = np.zeros((U, 2), dtype=np.int64)
    bad[:, 1] = 1  # a change for the worse in every clean utterance: significant
    sets[0] = SetCandidates("dev", ["identity", "fe"], conf, bad, np.full(U, 10))
    assert tune_margin(sets, [0.0, 0.05], harm_p=0.05).margin == 1.0


def test_a_job_decoded_with_another_nj_is_redone(tiny_set, tmp_path):
    """Job J of --nj 3 holds other utterances than job J of --nj 2: its done marker must not let the nj 2 run skip
    it (the merge then missed utterances)."""
    from specenh.stages.decode import decode_job
    from specenh.stages.decode_merge import merge_and_score

    asr, noisy, out = str(tiny_set / "asr.nemo"), tiny_set / "noisy", tmp_path / "dec"
    for j in (1, 2, 3):
        decode_job(noisy, "identity", asr, out, nj=3, job=j)
    for j in (1, 2):
        decode_job(noisy, "identity", asr, out, nj=2, job=j)
    info = merge_and_score(noisy, out, nj=2, frontend="identity", asr_model=asr, n_boot=0)
    assert info["num_utts"] == 5


def test_tune_first_look_keeps_the_lowest_harmless_threshold():
    """At the kept margin, the lowest threshold whose selection is worse on no set than decoding everything;
    the share of utterances not fully decoded is recorded per threshold."""
    from specenh.frontends.auto_tune import format_table, tune_first_look, tune_margin

    # u0: identity 0.95 and right; u1: identity 0.85, fe right; u2: identity 0.6, fe right
    a = _cands("a", [[0.95, 0.99], [0.85, 0.95], [0.6, 0.9]], [[0, 3], [4, 1], [5, 2]])
    res = tune_margin([a], [0.02])
    assert res.margin == 0.02 and res.wer["a"][0] == pytest.approx((3 + 1 + 2) / 30)
    tune_first_look([a], res, [0.9, 0.8, 0.5])
    assert res.first_looks == [1.0, 0.9, 0.8, 0.5]
    # 1.0 -> threshold 0.98 (the free part only): nothing skipped; 0.9 skips u0 (better), 0.8 also u1 (as full),
    # 0.5 also u2 (worse than decoding everything): 0.8 is kept, the lowest harmless threshold
    assert res.first_look_skip == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert res.first_look_wer["a"] == pytest.approx([6 / 30, 3 / 30, 6 / 30, 9 / 30])
    assert res.first_look == 0.8 and "skip 67% <- kept" in format_table(res)
    assert res.to_dict()["first_look"] == 0.8


def test_first_look_decodes_only_the_unsure_and_chooses_as_the_log_predicts():
    """decode_and_choose with a first look: the fallback is decoded for all, the others only where its
    confidence is below min(t, 1 - margin); the free part (>= 1 - margin) never changes a choice."""
    from specenh.stages.decode import decode_and_choose

    B = 4
    table = {0: [0.99, 0.5, 0.8, 0.95], 1: [1.0, 0.9, 0.7, 0.99]}  # per candidate (the feature value), confidences

    class FakeASR:
        rows = 0

        def decode_with_confidence(self, x, lens):
            FakeASR.rows += x.shape[0]
            k = x[:, 0, 0].long().tolist()
            u = x[:, 1, 0].long().tolist()
            return [f"c{a}u{b}" for a, b in zip(k, u)], torch.tensor([table[a][b] for a, b in zip(k, u)])

    def cand(k):
        y = torch.zeros(B, 2, 3)
        y[:, 0], y[:, 1] = k, torch.arange(B)[:, None].float()
        return (f"c{k}", y, torch.full((B,), 3))

    cands = [cand(0), cand(1)]
    full = decode_and_choose(FakeASR(), cands, margin=0.02)
    assert full[1] == [0, 1, 0, 1] and FakeASR.rows == 2 * B
    FakeASR.rows = 0
    free = decode_and_choose(FakeASR(), cands, margin=0.02, first_look=1.0)  # threshold 0.98: u0 only
    assert free[1] == full[1] and FakeASR.rows == B + 3 and free[3][1][0][0] is None
    assert torch.isnan(free[2][1, 0]) and not torch.isnan(free[2][1, 1:]).any()
    FakeASR.rows = 0
    look = decode_and_choose(FakeASR(), cands, margin=0.02, first_look=0.9)  # u0 and u3 keep the fallback
    assert look[1] == [0, 1, 0, 0] and FakeASR.rows == B + 2 and look[0] == ["c0u0", "c1u1", "c0u2", "c0u3"]


def test_frame_budget_batches_give_the_same_hypotheses(tiny_set, tmp_path):
    """--batch-frames only regroups the length-sorted batches: every hypothesis is the same (batch-invariant
    decoding), for a plain front-end and for one that chooses among candidates."""
    from specenh.features.io import length_sorted_batches, read_utt2num_frames
    from specenh.stages.decode import decode_job

    asr_path, noisy, clean = str(tiny_set / "asr.nemo"), tiny_set / "noisy", tiny_set / "clean"
    n2f = read_utt2num_frames(noisy / "utt2num_frames")
    budget = 2 * max(n2f.values()) - 1  # one long utterance per batch at most
    assert len(list(length_sorted_batches(n2f, 32, budget))) > len(list(length_sorted_batches(n2f, 32)))
    conf = tmp_path / "auto.yaml"
    conf.write_text("members: [identity, oracle]\ninference: {margin: 0.001}\n")
    for spec in ("identity", str(conf)):
        a, b = tmp_path / f"a_{Path(spec).stem}", tmp_path / f"b_{Path(spec).stem}"
        decode_job(noisy, spec, asr_path, a, clean_feats_dir=clean)
        decode_job(noisy, spec, asr_path, b, clean_feats_dir=clean, batch_frames=budget)
        assert (a / "hyp.1").read_text() == (b / "hyp.1").read_text()


def test_long_candidates_go_to_the_asr_within_a_frame_budget():
    """Candidates decoded together are cut into ASR calls of at most max_frames padded frames (at least one
    utterance): a 3-minute file's nine candidates no longer go in one call (17 GB RSS before)."""
    from specenh.stages.decode import decode_and_choose

    calls = []

    class FakeASR:
        def decode_with_confidence(self, x, lens):
            calls.append(tuple(x.shape))
            return ["h"] * x.shape[0], x[:, 0, 0].clone()

    cands = [(f"c{k}", torch.full((1, 2, 1000), 0.1 * k), torch.tensor([1000])) for k in range(5)]
    texts, best, conf, _ = decode_and_choose(FakeASR(), cands, max_frames=2500)
    assert calls == [(2, 2, 1000), (2, 2, 1000), (1, 2, 1000)] and best == [4]
    calls.clear()
    decode_and_choose(FakeASR(), cands, max_frames=500)  # longer than the budget: one at a time
    assert calls == [(1, 2, 1000)] * 5


def test_tune_prune_drops_what_adds_nothing_and_stops_at_the_tolerance():
    """Greedy backward elimination at the kept margin: a candidate that never wins goes first, a duplicate of a
    winner next (the mean WER unchanged), a helpful one stays (dropping it would cost more than the tolerance)."""
    from specenh.frontends.auto_tune import SetCandidates, format_table, tune_margin, tune_prune

    labels = ["identity", "sg/alpha=0.5", "sg/alpha=1", "inpaint"]
    # u0: alpha=1 right and most confident; u1: alpha=0.5 and alpha=1 equally right; u2: inpaint never confident
    conf = np.array([[0.5, 0.6, 0.8, 0.4], [0.5, 0.9, 0.9, 0.4], [0.9, 0.5, 0.5, 0.3]])
    errors = np.array([[4, 2, 0, 4], [3, 0, 0, 3], [0, 2, 2, 5]])
    s = SetCandidates("s", labels, conf, errors, np.full(3, 10))
    res = tune_margin([s], [0.0])
    kept = tune_prune([s], res, 0.001)
    assert res.drop == ["inpaint", "sg/alpha=0.5"] and kept[0].labels == ["identity", "sg/alpha=1"]
    assert [w for _, w in res.prune_path] == pytest.approx([0.0, 0.0])
    assert kept[0].wer(0.0) == pytest.approx(s.wer(0.0))
    assert "pruned at margin 0" in format_table(res) and res.to_dict()["drop"] == res.drop
    res2 = tune_margin([s], [0.0])
    tune_prune([s], res2, 0.5)  # a loose tolerance drops down to the fallback
    assert res2.drop[-1] == "sg/alpha=1" and len(res2.drop) == 3
    with pytest.raises(ValueError, match="tolerance"):
        tune_prune([s], res2, 1.5)


def test_auto_drop_leaves_out_candidates_and_members(tmp_path):
    """inference: {drop: [...]}: a dropped observation-adding weight is not computed, a member with nothing left
    is not run, the fallback cannot go, an unknown label names the candidates; drop: [] restores them."""
    from specenh.stages.batch_enhancer import run_candidates

    build({"name": "inpaint", "channels": [4, 8]}).save(tmp_path / "inp.pt")
    (tmp_path / "grid.yaml").write_text(f"checkpoint: {tmp_path / 'inp.pt'}\ninference: {{alpha: [0.5, 1.0]}}\n")
    fe = build({"name": "auto", "members": ["identity", str(tmp_path / "grid.yaml"), "bwe"]})
    assert fe.candidate_labels() == ["identity", "grid/alpha=0.5", "grid/alpha=1", "bwe"]
    fe.set_inference_options(drop=["grid/alpha=0.5", "bwe"])
    assert [lab for lab, _ in fe.members()] == ["identity", "grid"]
    x = torch.randn(2, 80, 30) - 6.0
    labels = [lab for lab, _, _ in run_candidates(fe, x, torch.tensor([30, 20]), ["a", "b"])]
    assert labels == ["identity", "grid/alpha=1"]
    with pytest.raises(ValueError, match="fallback"):
        fe.set_inference_options(drop=["identity"])
    with pytest.raises(ValueError, match="candidates: \\['identity'"):
        fe.set_inference_options(drop=["mask"])
    fe.set_inference_options(drop=[])
    assert len(run_candidates(fe, x, torch.tensor([30, 20]), ["a", "b"])) == 4


def test_frame_chunks_and_joined_chunks_equal_the_whole_batch():
    """The batch enhancer's CPU chunks: consecutive, within the frame budget (at least one utterance), and a
    front-end run chunk by chunk gives what it gives on the whole batch (lengths and padding included)."""
    from specenh.features.io import frame_chunks
    from specenh.stages.batch_enhancer import join_candidates, run_candidates

    assert frame_chunks([500, 400, 300, 100], None) == [(0, 4)]
    assert frame_chunks([500, 400, 300, 100], 1000) == [(0, 2), (2, 4)]
    assert frame_chunks([1500, 400, 300], 1000) == [(0, 1), (1, 3)]
    assert frame_chunks([10] * 5, 10 ** 6, max_items=2) == [(0, 2), (2, 4), (4, 5)]
    fe = build({"name": "inpaint", "channels": [4, 8]}).eval()
    torch.manual_seed(0)
    lens = torch.tensor([40, 33, 20, 9])
    x = torch.randn(4, 80, 40) - 6.0
    x = x * (torch.arange(40)[None, :] < lens[:, None])[:, None, :]
    whole = run_candidates(fe, x, lens, list("abcd"))
    parts = [run_candidates(fe, x[a:b, :, : int(lens[a:b].max())], lens[a:b], list("abcd")[a:b])
             for a, b in frame_chunks(lens.tolist(), 70)]
    joined = join_candidates(parts)
    assert [lab for lab, _, _ in joined] == [lab for lab, _, _ in whole] and joined[0][1].shape == whole[0][1].shape
    torch.testing.assert_close(joined[0][1], whole[0][1], atol=1e-5, rtol=1e-5)
    assert torch.equal(joined[0][2], whole[0][2])


def test_an_utterance_whose_candidates_are_equal_is_decoded_once_per_distinct_output():
    """Per utterance, a candidate equal to an earlier one (bwe on full-band speech: the input) is not decoded
    again: it shares that candidate's text and confidence, so it can never beat it (ties keep the first)."""
    from specenh.stages.decode import decode_and_choose, first_equal_rows

    sent = []

    class FakeASR:
        def decode_with_confidence(self, x, lens):
            sent.extend(x[:, 0, 0].tolist())
            return [f"v{v:g}" for v in x[:, 0, 0].tolist()], x[:, 0, 0] / 10

    B = 4
    ident = torch.arange(B, dtype=torch.float32)[:, None, None].expand(B, 2, 5).clone()  # utterance u: value u
    same_on_0_2 = ident.clone()
    same_on_0_2[[1, 3]] += 5  # equal to identity for u0 and u2 only
    shorter = ident.clone()  # equal values, but u1 one frame shorter: a different output
    lens = torch.full((B,), 5)
    cands = [("identity", ident, lens), ("bwe", same_on_0_2, lens), ("x", shorter, torch.tensor([5, 4, 5, 5]))]
    assert first_equal_rows(cands) == [[0, 0, 0, 0], [0, 1, 0, 1], [0, 2, 0, 0]]
    texts, best, conf, outs = decode_and_choose(FakeASR(), cands)
    assert sorted(sent) == [0, 1, 1, 2, 3, 6, 8]  # identity's four, bwe's u1 and u3, x's u1
    assert outs[1][0] == ["v0", "v6", "v2", "v8"] and outs[2][0] == ["v0", "v1", "v2", "v3"]
    assert torch.equal(conf[1, [0, 2]], conf[0, [0, 2]]) and torch.equal(conf[2, [0, 2, 3]], conf[0, [0, 2, 3]])
    assert best == [0, 1, 0, 1] and texts == ["v0", "v6", "v2", "v8"]
