"""End to end: egs/mini at a tiny size through the recipe driver (the real shell scripts)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specenh.data.kaldi import read_kv
from specenh.features.io import read_feats_scp

REPO = Path(__file__).resolve().parents[1]
TINY_ASR = ("train.max_steps=6 train.num_val_utts=4 train.num_threads=1 model.encoder.n_layers=1 "
            "model.encoder.d_model=32 model.encoder.n_heads=2 model.encoder.subsampling_conv_channels=32 "
            "model.decoder.feat_in=32 tokenizer.vocab_size=40")
TINY = ["--train_data", "precomputed", "--local_data_opts", "--num_train 24 --num_dev 6 --num_test 8",
        "--train_conditions", "noise_5db", "--test_conditions", "noise_0db bandlimit_2k",
        "--asr_args", TINY_ASR, "--frontends", "identity oracle specsub", "--resynth_max_utts", "2"]


def make_recipe_copy(root: Path, recipe: str = "mini") -> Path:
    """A copy of egs/<recipe> whose relative links (../TEMPLATE, ../../utils, conf/...) resolve to the repo."""
    (root / "egs").mkdir(parents=True)
    shutil.copytree(REPO / "egs" / recipe, root / "egs" / recipe, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "dump", "exp"))
    for name in ("utils", "conf", "tools", "specenh"):
        (root / name).symlink_to(REPO / name)
    (root / "egs" / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    return root / "egs" / recipe


def run_recipe(d: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_mini_end_to_end(tmp_path, monkeypatch):
    d = make_recipe_copy(tmp_path)
    monkeypatch.chdir(d)  # scp files hold paths relative to the recipe dir (Kaldi convention)
    r = run_recipe(d, "--stage", "1", "--stop-stage", "7", *TINY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for s in ("train", "dev", "test", "train_noise_5db", "dev_noise_5db", "test_noise_0db", "test_bandlimit_2k"):
        feats = d / "dump" / "feats" / s
        scp = read_kv(feats / "feats.scp")
        assert scp and set(scp) == set(read_kv(d / "data" / s / "wav.scp")), s
        x = read_feats_scp(feats / "feats.scp")[next(iter(scp))]
        assert x.shape[1] == 80
    assert set(read_kv(d / "data" / "test_noise_0db" / "clean.scp")) == set(read_kv(d / "data" / "test" / "wav.scp"))
    # per-job logs with start/end lines and exit codes
    log = (d / "dump" / "feats" / "test" / "log" / "extract.1.log").read_text()
    assert "Ended (code 0)" in log
    # the saved per-stage command reruns the stage; a rerun is a no-op (every step skipped)
    assert (d / "exp" / "run.stage3.sh").is_file()
    before = (d / "dump" / "feats" / "test" / "feats.1.ark").read_bytes()
    # stage 3 trained the reference ASR; stage 5 decoded every test set with identity and oracle
    assert (d / "exp" / "asr" / "model.nemo").is_file()
    import json

    for s in ("test_identity", "test_noise_0db_identity", "test_noise_0db_oracle", "test_bandlimit_2k_oracle"):
        sc = json.loads((d / "exp" / "decode" / s / "scoring" / "scores.json").read_text())
        assert sc["num_utts"] == 8 and 0 <= sc["wer"] and sc["ci_wer"][0] <= sc["wer"] <= sc["ci_wer"][1]
    assert not (d / "exp" / "decode" / "test_oracle").exists()  # oracle of clean = identity: skipped
    # oracle decodes the clean features: the same hypotheses as identity on the clean set
    hyp_clean = read_kv(d / "exp" / "decode" / "test_identity" / "hyp", allow_empty_value=True)
    hyp_oracle = read_kv(d / "exp" / "decode" / "test_noise_0db_oracle" / "hyp", allow_empty_value=True)
    assert hyp_clean == hyp_oracle
    res = (d / "RESULTS.md").read_text()
    assert "| test_noise_0db | noise_0db |" in res and "Paired bootstrap" in res
    assert (d / "exp" / "report" / "wer_per_condition.png").stat().st_size > 1000
    assert "| test_noise_0db | noise_0db |" in res and "| test_noise_0db | specsub | wave |" in res  # stage 7 table
    assert (d / "exp" / "resynth" / "panel_test_noise_0db.png").stat().st_size > 1000
    assert len(list((d / "exp" / "resynth" / "test_bandlimit_2k_specsub" / "wav").glob("*.wav"))) == 6
    r2 = run_recipe(d, "--stage", "1", "--stop-stage", "5", *TINY)
    assert r2.returncode == 0
    assert " run  " not in r2.stderr and "skip stage3.feats.test.jobs" in r2.stderr
    # --overwrite redoes the stage and gives byte-identical outputs
    r3 = run_recipe(d, "--stage", "3", "--stop-stage", "3", "--overwrite", "true", *TINY)
    assert r3.returncode == 0, r3.stderr[-3000:]
    assert (d / "dump" / "feats" / "test" / "feats.1.ark").read_bytes() == before
    # stage 5's outputs do not depend on --nj (the batches an utterance lands in): nj 1 and 3 vs run.sh's 2
    hyp_files = sorted((d / "exp" / "decode").glob("test*_identity/hyp"))
    first = {p: p.read_bytes() for p in hyp_files}
    only_id = [a if a != "identity oracle specsub" else "identity" for a in TINY]
    for nj in ("1", "3"):
        rn = run_recipe(d, "--stage", "5", "--stop-stage", "5", "--overwrite", "true", "--nj", nj, *only_id)
        assert rn.returncode == 0, rn.stderr[-3000:]
        assert {p: p.read_bytes() for p in hyp_files} == first, f"--nj {nj} changed the hypotheses"
    # an auto front-end with a tune: block: stage 5 alone is refused before any work (no tuned config);
    # stage 4 decodes the validation sets and chooses the margin, stage 5 decodes with the tuned YAML
    (d / "conf" / "frontend" / "auto_tiny.yaml").write_text(
        "members: [identity, specsub]\ntune: {margins: [0, 0.05]}\n")
    auto = [a if a != "identity oracle specsub" else "identity auto_tiny" for a in TINY]
    r4 = run_recipe(d, "--stage", "5", "--stop-stage", "5", *auto)
    assert r4.returncode != 0 and "frontend_auto_tiny/auto_tiny.yaml does not exist" in r4.stderr + r4.stdout
    r4 = run_recipe(d, "--stage", "4", "--stop-stage", "5", *auto)
    assert r4.returncode == 0, r4.stdout[-3000:] + r4.stderr[-3000:]
    tuned = yaml.safe_load((d / "exp" / "frontend_auto_tiny" / "auto_tiny.yaml").read_text())
    assert tuned["tuned"]["sets"] == ["dev", "dev_noise_5db"] and tuned["inference"]["margin"] in (0, 0.05, 1.0)
    assert (d / "exp" / "frontend_auto_tiny" / "valid" / "dev_noise_5db" / "candidates.jsonl").is_file()
    info = json.loads((d / "exp" / "decode" / "test_noise_0db_auto_tiny" / "decode_info.json").read_text())
    assert info["margin"] == tuned["inference"]["margin"] and info["members"] == ["identity", "specsub"]


@pytest.mark.e2e
def test_mini_unknown_option_rejected(tmp_path):
    d = make_recipe_copy(tmp_path)
    r = run_recipe(d, "--no_such_option", "1")
    assert r.returncode != 0
    assert "no_such_option" in (r.stderr + r.stdout)
    h = run_recipe(d, "--help")
    assert "Stages:" in (h.stdout + h.stderr)


TINY_GAN = ("model.latent_dim=16 model.capacity=2 model.fmap_max=16 model.cond_channels=4 disc.capacity=1 "
            "disc.fmap_max=8 loss.cx_layers=[0,-1] loss.cx_max_positions=64 train.crop_frames=64 train.batch_size=4 train.max_steps=4 "
            "train.val_every_steps=2 train.ckpt_every_steps=2 train.num_val_utts=4 train.image_every_steps=0")
TINY_DET = ["--local_data_opts", "--num_train 24 --num_dev 6 --num_test 8",
            "--train_conditions", "noise_5db", "--test_conditions", "noise_0db",
            "--asr_args", TINY_ASR, "--frontends", "identity stylegan", "--frontend_args", TINY_GAN]


def _outputs(d: Path) -> dict[str, bytes]:
    """Hypotheses and WER tables of every decode."""
    out = {}
    for p in sorted((d / "exp" / "decode").rglob("*")):
        if p.is_file() and (p.name == "hyp" or p.name == "scores.json"):
            out[str(p.relative_to(d))] = p.read_bytes()
    return out


@pytest.mark.e2e
def test_mini_deterministic_under_cpu_load(tmp_path):
    """A result depends only on (commit, config, seed): stages 1-5 (data, degradation, features, the reference
    ASR, a tiny stylegan, decoding) twice, the second beside a CPU-burning process (one; with two it was the
    suite's slowest test on 2 cores: 200 s with one), give byte-identical hypotheses and WER tables."""
    runs, weights = [], []
    for i, burn in enumerate((0, 1)):
        d = make_recipe_copy(tmp_path / f"run{i}")
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burn)]
        try:
            r = run_recipe(d, "--stage", "1", "--stop-stage", "5", *TINY_DET, timeout=1200)
        finally:
            for b in burners:
                b.kill()
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        runs.append(_outputs(d))
        import json

        import torch

        weights.append(torch.load(d / "exp" / "frontend_stylegan" / "model.pt", weights_only=False)["state_dict"])

        info = json.loads((d / "exp" / "frontend_stylegan" / "train_info.json").read_text())
        assert info["steps"] == 4 and info["truncated"] is False
    # hyp + scores.json of identity and stylegan on test and test_noise_0db
    assert len(runs[0]) == 8 and runs[0].keys() == runs[1].keys()
    differ = [k for k in runs[0] if runs[0][k] != runs[1][k]]
    assert not differ, differ
    import torch

    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.e2e
def test_mini_fails_fast_before_any_work(tmp_path):
    """A misspelt condition or a stage-5 run with nothing trained stops before any work, naming the problem."""
    d = make_recipe_copy(tmp_path)
    r = run_recipe(d, "--test_conditions", "noise_5dbb")
    assert r.returncode != 0 and "did you mean 'noise_5db'" in r.stderr and "nothing was run" in r.stderr
    assert not (d / "data").exists()
    r = run_recipe(d, "--stage", "5", "--stop-stage", "5", "--frontends", "identity stylegan")
    assert r.returncode != 0 and "frontend_stylegan/model.pt does not exist" in r.stderr
    assert "asr/model.nemo does not exist" in r.stderr and not (d / "exp" / "decode").exists()


@pytest.mark.e2e
def test_second_run_in_one_dir_is_refused_before_writing(tmp_path):
    """A run while another holds the recipe dir is refused before it writes anything (no log is truncated),
    naming the live driver; once the first ends, a run goes ahead."""
    import fcntl

    d = make_recipe_copy(tmp_path)
    (d / "exp").mkdir()
    lock = d / "exp" / ".run.lock"
    with open(lock, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write("driver pid 4242 on host since now: ./specenh.sh ...\n")
        f.flush()
        r = run_recipe(d, "--stage", "1", "--stop-stage", "1", *TINY)
        assert r.returncode != 0 and "another run is active" in r.stderr and "driver pid 4242" in r.stderr
        assert not (d / "data").exists() and not (d / "exp" / "run.history").exists()
    r = run_recipe(d, "--stage", "0", "--stop-stage", "0", *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "driver pid" in lock.read_text()
    # the driver was killed (kill -9) but a job it started still holds the lock: the refusal says so and names it
    dead = subprocess.run(["bash", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock.write_text(f"driver pid {dead} on host since now: ./specenh.sh ...\n")
        r = run_recipe(d, "--stage", "1", "--stop-stage", "1", *TINY)
        assert r.returncode != 0 and "That driver has exited, but its jobs still hold the lock" in r.stderr
        assert str(holder.pid) in r.stderr
    finally:
        holder.kill()


def test_every_run_sh_execs_the_driver():
    """``exec ./specenh.sh``: run.sh becomes the driver, so killing run.sh kills the driver (not an orphan)."""
    for run in sorted((REPO / "egs").glob("*/run.sh")):
        text = run.read_text()
        assert "exec ./specenh.sh" in text and text.count("./specenh.sh \\") == 1, run


def test_setup_sh_starts_a_new_recipe(tmp_path):
    """egs/TEMPLATE/setup.sh egs/<corpus>: the shared driver linked, the recipe's own files copied, --help works;
    an existing dir or a dir elsewhere is refused."""
    make_recipe_copy(tmp_path, "realspeech")
    setup = tmp_path / "egs" / "TEMPLATE" / "setup.sh"
    r = subprocess.run([str(setup), "egs/mycorpus"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    new = tmp_path / "egs" / "mycorpus"
    assert (new / "specenh.sh").is_symlink() and os.readlink(new / "specenh.sh") == "../TEMPLATE/specenh.sh"
    assert (new / "utils" / "run.pl").is_file() and (new / "local" / "data.sh").is_file()
    assert (new / "conf" / "frontend" / "stylegan.yaml").is_file() and "setup.sh" in (new / "README.md").read_text()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    h = subprocess.run(["./run.sh", "--help"], cwd=new, capture_output=True, text=True, env=env)
    assert h.returncode == 0 and "--frontends" in h.stdout + h.stderr
    again = subprocess.run([str(setup), "egs/mycorpus"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode != 0 and "exists; not touching it" in again.stderr
    elsewhere = subprocess.run([str(setup), "mycorpus"], cwd=tmp_path, capture_output=True, text=True)
    assert elsewhere.returncode != 0 and "directly under" in elsewhere.stderr
    bad = subprocess.run([str(setup), "egs/x", "--from", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "is not a recipe" in bad.stderr and not (tmp_path / "egs" / "x").exists()
