"""One "done" convention (specenh.utils.done, utils/step.sh): a step is skipped only when its marker holds
the fingerprint of its current config and inputs; a changed config redoes it, an unchanged rerun is a no-op."""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from specenh.data.kaldi import DataDir, save_data_dir
from specenh.features.extract import extract_job, merge_jobs
from specenh.features.io import read_feats_scp
from specenh.features.logmel import FeatureConfig
from specenh.utils.config import load_yaml
from specenh.utils.done import Marker, command_fingerprint, fingerprint

REPO = Path(__file__).resolve().parents[1]


def test_fingerprint_and_marker(tmp_path, caplog):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("a: 1\n")
    fp = fingerprint({"x": 1}, contents=[cfg])
    assert fp == fingerprint({"x": 1}, contents=[cfg]) and fp != fingerprint({"x": 2}, contents=[cfg])
    m = Marker(tmp_path / ".done" / "job.1")
    assert not m.is_current(fp)
    m.mark(fp, {"utts": 3})
    assert m.is_current(fp)
    cfg.write_text("a: 2\n")  # same size, other bytes: another fingerprint
    fp2 = fingerprint({"x": 1}, contents=[cfg])
    with caplog.at_level(logging.WARNING):
        assert not m.is_current(fp2, "job 1")
    assert "job 1: done before with other settings" in caplog.text and not m.exists()
    assert command_fingerprint(["specenh", "x", "--config", str(cfg)]) != command_fingerprint(["specenh", "x"])


def test_a_changed_base_config_redoes_the_step(tmp_path):
    """A variant states only what differs (``base:``): editing the base (or the base's base) changes the
    fingerprint of every command naming the variant; a file without ``base:`` chains to nothing."""
    from specenh.utils.done import base_files

    shared = tmp_path / "shared.yaml"
    shared.write_text("model: {capacity: 16}\n")
    (tmp_path / "r").mkdir()
    mid = tmp_path / "r" / "stylegan.yaml"
    mid.write_text("base: ../shared.yaml\nmodel: {capacity: 4}\n")
    var = tmp_path / "r" / "stylegan_psi1.yaml"
    var.write_text("base: stylegan.yaml\nmodel: {psi: 1.0}\n")
    assert base_files(var) == [str(mid), str(tmp_path / "r" / ".." / "shared.yaml")]
    assert base_files(shared) == []
    argv = ["specenh", "train-frontend", "--config", str(var)]
    before = command_fingerprint(argv)
    shared.write_text("model: {capacity: 32}\n")
    assert command_fingerprint(argv) != before
    cyc = tmp_path / "c.yaml"
    cyc.write_text("base: c.yaml\n")
    assert base_files(cyc) == []  # the loader names the cycle; the fingerprint just stops


def test_a_retrained_model_behind_a_frontend_yaml_redoes_its_steps(tmp_path, monkeypatch):
    """An inference variant's checkpoint and auto's members count like a model named on the command line:
    retraining one redoes the stage-5 steps (shell and per-job markers) that decoded through the YAML."""
    import time

    from specenh.stages.decode import decode_fingerprint
    from specenh.utils.done import referenced_models

    monkeypatch.chdir(tmp_path)  # the YAMLs name models relative to the recipe dir
    ck = Path("exp/frontend_bwe/model.pt")
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"v1")
    var, auto = Path("bwe_x.yaml"), Path("auto.yaml")
    var.write_text(f"checkpoint: {ck}\ninference: {{alpha: 0.5}}\n")
    auto.write_text(f"members: [identity, {ck}, exp/frontend_missing/model.pt]\n")
    assert referenced_models(var) == referenced_models(auto) == [str(ck)]
    assert referenced_models("nope.yaml") == [] and referenced_models(ck) == []
    before = [command_fingerprint(["specenh", "decode", "--frontend", str(y)]) for y in (var, auto)]
    dec = [decode_fingerprint("asr.nemo", str(y)) for y in (var, auto)]
    time.sleep(0.01)
    ck.write_bytes(b"v2 retrained")
    assert all(b != command_fingerprint(["specenh", "decode", "--frontend", str(y)]) for b, y in zip(before, (var, auto)))
    assert all(d != decode_fingerprint("asr.nemo", str(y)) for d, y in zip(dec, (var, auto)))


def _data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    wav, spk, text = {}, {}, {}
    for i in range(4):
        u = f"s{i % 2}-u{i}"
        p = root / "wav" / f"{u}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, (0.1 * rng.standard_normal(8000 + 1000 * i)).astype(np.float32), 16000)
        wav[u], spk[u], text[u] = str(p), f"s{i % 2}", "hello"
    save_data_dir(DataDir(wav_scp=wav, utt2spk=spk, text=text), root / "data")
    return root / "data"


def test_extract_feats_redone_when_the_config_changes(tmp_path, caplog):
    """The issue's case: extract-feats with features: 64 over an 80-band output dir is redone, and the
    merged dir's feats_config.yaml and arks agree; an unchanged rerun is skipped."""
    data, out = _data(tmp_path), tmp_path / "feats"
    for cfg in (FeatureConfig(), FeatureConfig(), FeatureConfig(features=64)):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for j in (1, 2):
                extract_job(data, out, cfg, nj=2, job=j)
            merge_jobs(data, out, cfg, nj=2)
        feats = read_feats_scp(out / "feats.scp")
        assert {m.shape[1] for m in (feats[u] for u in feats)} == {cfg.features}
        assert load_yaml(out / "feats_config.yaml")["features"] == cfg.features
    assert "done before with other settings" in caplog.text


def test_merge_refuses_jobs_of_another_config(tmp_path):
    import pytest

    data, out = _data(tmp_path), tmp_path / "feats"
    extract_job(data, out, FeatureConfig(), nj=1, job=1)
    with pytest.raises(RuntimeError, match="another feature config"):
        merge_jobs(data, out, FeatureConfig(features=64), nj=1)


def _step(tmp_path: Path, *cmd: str, overwrite: str = "false") -> subprocess.CompletedProcess:
    script = f'set -euo pipefail; done_dir={tmp_path}/done; overwrite={overwrite}; . {REPO}/utils/step.sh; step s1 "$@"'
    env = {**os.environ, "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", "-c", script, "bash", *cmd], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_shell_step_redoes_a_changed_command_or_config(tmp_path):
    conf = tmp_path / "x.yaml"
    conf.write_text("a: 1\n")
    cmd = ["bash", "-c", f"echo ran >> {tmp_path}/count", "_", "--config", str(conf)]
    r = _step(tmp_path, *cmd)
    assert r.returncode == 0 and "run  s1" in r.stderr
    r = _step(tmp_path, *cmd)
    assert "skip s1" in r.stderr  # unchanged: a no-op
    conf.write_text("a: 2\n")  # the config the command names changed
    r = _step(tmp_path, *cmd)
    assert "redo s1: done before with another command or config" in r.stderr and "run  s1" in r.stderr
    r = _step(tmp_path, *cmd[:-1], str(tmp_path / "other.yaml"))  # another command line
    assert "redo s1" in r.stderr
    r = _step(tmp_path, *cmd[:-1], str(tmp_path / "other.yaml"), overwrite="true")
    assert "run  s1" in r.stderr and "skip" not in r.stderr
    assert (tmp_path / "count").read_text().count("ran") == 4
    failing = _step(tmp_path, "false")
    assert failing.returncode != 0 and not (tmp_path / "done" / "s1.done").exists()  # never marked done


def test_failed_step_shows_the_end_of_its_job_logs(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "x.1.log").write_text("# started\nall fine\n# Ended (code 0) at now\n")
    (log_dir / "x.2.log").write_text("# started\nTraceback...\nValueError: utterance 'u7' is silent\n"
                                     "# Ended (code 1) at now\n")
    r = _step(tmp_path, "bash", "-c", "exit 1", "_", f"{log_dir}/x.JOB.log")
    assert r.returncode != 0
    assert "s1 failed; the end of" in r.stderr and "utterance 'u7' is silent" in r.stderr
    assert "all fine" not in r.stderr  # the job that succeeded is not shown
