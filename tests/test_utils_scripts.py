"""The Kaldi-style scripts in utils/, run as recipes run them (subprocess, stdlib python / bash)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.utils.io import split_for_job

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"
# python3 on PATH must be this interpreter, so the .sh wrappers find specenh as after `. path.sh`
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
       "PYTHONPATH": str(REPO), "LC_ALL": "C"}


def run(*args: str | Path, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=ENV, input=stdin, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("name", ["parse_options.sh", "run.pl", "split_scp.py", "validate_data_dir.sh",
                                  "fix_data_dir.sh", "utt2spk_to_spk2utt.py", "spk2utt_to_utt2spk.py",
                                  "filter_scp.py"])
def test_scripts_are_executable(name: str) -> None:
    assert os.access(UTILS / name, os.X_OK), name


# -------------------------------------------------------------------------------- parse_options


@pytest.fixture
def opts_script(tmp_path: Path) -> Path:
    script = tmp_path / "run.sh"
    script.write_text(f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
use_gpu=false
cmd=run.pl
nj=4
help_message="Usage: $0 [options] <data-dir>\\n  --stop-stage N   last stage to run"
. {UTILS}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage use_gpu=$use_gpu nj=$nj cmd=$cmd"
echo "args=$# [$*]"
""")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("form", [["--stop-stage", "5"], ["--stop_stage", "5"], ["--stop-stage=5"]])
def test_parse_options_dash_and_underscore(opts_script: Path, form: list[str]) -> None:
    r = run(opts_script, "--stage", "3", *form, "data/train", "exp/x")
    assert r.returncode == 0, r.stderr
    assert "stage=3 stop_stage=5 " in r.stdout
    assert "args=2 [data/train exp/x]" in r.stdout


def test_parse_options_rejects_unknown(opts_script: Path) -> None:
    r = run(opts_script, "--stop-stag", "5")
    assert r.returncode != 0
    assert "--stop-stag" in r.stderr and "unknown option" in r.stderr
    assert "stage=" not in r.stdout


def test_parse_options_missing_value_and_bad_boolean(opts_script: Path) -> None:
    r = run(opts_script, "--nj")
    assert r.returncode != 0 and "needs a value" in r.stderr
    r = run(opts_script, "--use-gpu", "yes")
    assert r.returncode != 0 and "true or false" in r.stderr
    r = run(opts_script, "--use-gpu", "true")
    assert r.returncode == 0 and "use_gpu=true" in r.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_parse_options_help(opts_script: Path, flag: str) -> None:
    r = run(opts_script, flag)
    assert r.returncode == 0
    assert "Usage:" in r.stdout and "--stop-stage N   last stage to run" in r.stdout
    assert "stage=" not in r.stdout


def test_parse_options_config_file(opts_script: Path, tmp_path: Path) -> None:
    conf = tmp_path / "opts.conf"
    conf.write_text("# defaults for this run\n--nj 8\n--cmd 'slurm.pl --mem 4G'  # quoted\n\n--stop-stage=2\n")
    r = run(opts_script, "--stop-stage", "7", "--config", conf, "x")
    assert r.returncode == 0, r.stderr
    assert "stop_stage=7 use_gpu=false nj=8 cmd=slurm.pl --mem 4G" in r.stdout  # command line wins
    conf.write_text("--bogus 1\n")
    r = run(opts_script, "--config", conf)
    assert r.returncode != 0 and "--bogus" in r.stderr


def test_parse_options_stops_at_positional(opts_script: Path) -> None:
    r = run(opts_script, "--nj", "2", "data", "--stage", "9")
    assert r.returncode == 0, r.stderr
    assert "stage=0 " in r.stdout and "args=3 [data --stage 9]" in r.stdout
    r = run(opts_script, "--", "--stage")
    assert r.returncode == 0 and "args=1 [--stage]" in r.stdout


# ---------------------------------------------------------------------------------------- run.pl


def test_run_pl_job_array(tmp_path: Path) -> None:
    r = run(UTILS / "run.pl", "--mem", "2G", "--gpu", "0", "--num-threads", "1", "--time", "1:00:00",
            "JOB=1:3", "log/x.JOB.log", "echo", "job JOB out", ";", "echo", "job JOB err", ">&2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"log/x.{j}.log").read_text().splitlines()
        assert lines[0].startswith("# echo") and f"job {j} out" in lines[0]  # the command, JOB substituted
        assert lines[1].startswith("# Started at ")
        assert f"job {j} out" in lines and f"job {j} err" in lines
        assert lines[-2].startswith("# Accounting: time=") and lines[-2].endswith("threads=1")
        assert lines[-1].startswith("# Ended (code 0) at ") and "elapsed time" in lines[-1]


def test_run_pl_failure_names_log(tmp_path: Path) -> None:
    r = run(UTILS / "run.pl", "JOB=1:3", "log/y.JOB.log", "if [ JOB -eq 2 ]; then echo boom; exit 3; fi",
            cwd=tmp_path)
    assert r.returncode != 0
    assert "log/y.2.log" in r.stderr and "log/y.1.log" not in r.stderr
    assert "# Ended (code 3)" in (tmp_path / "log/y.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/y.3.log").read_text()


def test_run_pl_single_job_and_pipes(tmp_path: Path) -> None:
    r = run(UTILS / "run.pl", "log/one.log", "echo", "a b c", "|", "tr", "a-z", "A-Z", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "A B C" in (tmp_path / "log/one.log").read_text().splitlines()


def test_run_pl_shared_log_is_an_error(tmp_path: Path) -> None:
    r = run(UTILS / "run.pl", "JOB=1:2", "log/same.log", "true", cwd=tmp_path)
    assert r.returncode != 0 and "JOB" in r.stderr


def test_run_pl_failure_shows_last_error_line(tmp_path: Path) -> None:
    r = run(UTILS / "run.pl", "JOB=1:2", "log/e.JOB.log",
            "echo 'x ERROR: first'; [ JOB -eq 2 ] && echo '2026 (cli:1) ERROR: bad input in data/x/text:3' && exit 1; true",
            cwd=tmp_path)
    assert r.returncode != 0
    assert "log/e.2.log\nrun.pl:   2026 (cli:1) ERROR: bad input in data/x/text:3" in r.stderr


def _pids_with(marker: str) -> list[int]:
    """PIDs of live processes whose command line is ``marker``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip() == marker:
                    stat = (d / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[0] != "Z":
                        out.append(int(d.name))
            except OSError:
                pass
    return out


def _wait_until(cond, timeout: float = 10.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["sigterm", "group_kill9", "kill9"])
def test_run_pl_jobs_do_not_outlive_it(tmp_path: Path, how: str) -> None:
    """Issue #19 item 4: jobs stay in run.pl's process group and die with it. SIGTERM: run.pl ends
    every process of every job (a compound command's children too); kill -9 of the caller's group
    reaches them; kill -9 of run.pl alone: the job's process gets SIGTERM (PR_SET_PDEATHSIG)."""
    marker = f"sleep 3{abs(hash((str(tmp_path), how))) % 1000:03d}"  # a unique command line to find
    # job 1 is a compound command (bash + a child), job 2 a simple one (bash execs it)
    body = f"if [ JOB -eq 1 ]; then {marker}; true; else exec {marker}; fi"
    if how == "kill9":
        body = f"exec {marker}"  # the death signal reaches the job's own process only
    p = subprocess.Popen([str(UTILS / "run.pl"), "JOB=1:2", "log/k.JOB.log", body], cwd=tmp_path, env=ENV,
                         start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: len(_pids_with(marker)) == 2), "jobs did not start"
        assert all(os.getpgid(pid) == p.pid for pid in _pids_with(marker))  # run.pl's group, not their own
        if how == "sigterm":
            os.kill(p.pid, signal.SIGTERM)
            _, err = p.communicate(timeout=20)
            assert p.returncode != 0 and "killed running jobs" in err and "2 / 2 jobs failed" in err
        elif how == "group_kill9":
            os.killpg(p.pid, signal.SIGKILL)
        else:
            os.kill(p.pid, signal.SIGKILL)
        assert _wait_until(lambda: not _pids_with(marker), timeout=5.0), f"orphans: {_pids_with(marker)}"
    finally:
        for pid in _pids_with(marker):
            os.kill(pid, signal.SIGKILL)
        if p.poll() is None:
            p.kill()
        p.communicate()


def _job_body(marks: Path, want_concurrent: int) -> str:
    """Shell for one job: registers itself, then checks how many jobs run at the same time."""
    if want_concurrent > 1:  # wait until all jobs are running together (proves parallelism)
        return (f"touch {marks}/JOB; for i in $(seq 100); do [ $(ls {marks} | wc -l) -ge {want_concurrent} ] "
                f"&& exit 0; sleep 0.1; done; exit 1")
    # mkdir is atomic: it fails if another job holds the lock (proves serial execution)
    return f"mkdir {marks}/lock || exit 1; sleep 0.2; rmdir {marks}/lock"


@pytest.mark.parametrize("max_jobs", [1, 3])
def test_run_pl_max_jobs_run(tmp_path: Path, max_jobs: int) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    r = run(UTILS / "run.pl", "--max-jobs-run", str(max_jobs), "JOB=1:3", "log/p.JOB.log",
            _job_body(marks, max_jobs), cwd=tmp_path)
    assert r.returncode == 0, r.stderr + "".join((tmp_path / f"log/p.{j}.log").read_text() for j in (1, 2, 3))


# ------------------------------------------------------------------------------------- split_scp


@pytest.mark.parametrize("n, nj", [(10, 3), (7, 7), (5, 2), (23, 4)])
def test_split_scp_matches_split_for_job(tmp_path: Path, n: int, nj: int) -> None:
    lines = [f"utt{i:03d} /data/utt{i:03d}.wav" for i in range(n)]
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"{ln}\n" for ln in lines))
    outs = [tmp_path / "split" / f"wav.{j}.scp" for j in range(1, nj + 1)]
    r = run(UTILS / "split_scp.py", scp, *outs)
    assert r.returncode == 0, r.stderr
    for j, out in enumerate(outs, 1):
        assert out.read_text().splitlines() == split_for_job(lines, nj, j)
        r = run(UTILS / "split_scp.py", "--nj", str(nj), "--job", str(j), scp)
        assert r.returncode == 0 and r.stdout.splitlines() == split_for_job(lines, nj, j)


def test_split_scp_by_speaker(tmp_path: Path) -> None:
    spk_sizes = {"s1": 5, "s2": 1, "s3": 2, "s4": 3}
    utts = [(f"{s}-{i}", s) for s, k in spk_sizes.items() for i in range(k)]
    (tmp_path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (tmp_path / "text").write_text("".join(f"{u} words of {u}\n" for u, _ in utts))
    outs = [tmp_path / f"text.{j}" for j in (1, 2)]
    r = run(UTILS / "split_scp.py", "--utt2spk", tmp_path / "utt2spk", tmp_path / "text", *outs)
    assert r.returncode == 0, r.stderr
    speakers = list(spk_sizes)
    for j, out in enumerate(outs, 1):
        got = {ln.split()[0].split("-")[0] for ln in out.read_text().splitlines()}
        assert got == set(split_for_job(speakers, 2, j))


def test_split_scp_refuses_empty_parts(tmp_path: Path) -> None:
    (tmp_path / "a.scp").write_text("u1 x\nu2 y\n")
    r = run(UTILS / "split_scp.py", tmp_path / "a.scp", *(tmp_path / f"o{j}" for j in range(3)))
    assert r.returncode != 0 and "non-empty" in r.stderr


# ------------------------------------------------------------------------- small conversion tools


def test_utt2spk_spk2utt_round_trip(tmp_path: Path) -> None:
    utt2spk = "B-1 B\na-1 a\na-2 a\n"
    r = run(UTILS / "utt2spk_to_spk2utt.py", stdin=utt2spk)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "B B-1\na a-1 a-2\n"
    (tmp_path / "spk2utt").write_text(r.stdout)
    r = run(UTILS / "spk2utt_to_utt2spk.py", tmp_path / "spk2utt")
    assert r.returncode == 0 and r.stdout == utt2spk
    r = run(UTILS / "utt2spk_to_spk2utt.py", stdin="u1 s1\nu2\n")
    assert r.returncode != 0 and "-:2" in r.stderr


def test_filter_scp(tmp_path: Path) -> None:
    (tmp_path / "ids").write_text("u2\nu4 anything\n")
    (tmp_path / "wav.scp").write_text("u1 a.wav\nu2 b.wav\nu3 c.wav\nu4 d.wav\n")
    r = run(UTILS / "filter_scp.py", tmp_path / "ids", tmp_path / "wav.scp")
    assert r.stdout == "u2 b.wav\nu4 d.wav\n"
    r = run(UTILS / "filter_scp.py", "--exclude", tmp_path / "ids", tmp_path / "wav.scp")
    assert r.stdout == "u1 a.wav\nu3 c.wav\n"
    r = run(UTILS / "filter_scp.py", "-f", "2", tmp_path / "ids", stdin="x u2\ny u3\n")
    assert r.stdout == "x u2\n"


# -------------------------------------------------------------------------- data-dir wrappers


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for u in ("s1-a", "s1-b"):
        sf.write(tmp_path / f"{u}.wav", 0.1 * np.random.default_rng(0).standard_normal(1600).astype(np.float32), 16000)
    (d / "wav.scp").write_text(f"s1-a {tmp_path}/s1-a.wav\ns1-b {tmp_path}/s1-b.wav\n")
    (d / "utt2spk").write_text("s1-a s1\ns1-b s1\n")
    (d / "spk2utt").write_text("s1 s1-a s1-b\n")
    (d / "text").write_text("s1-a hello\ns1-b world\n")
    return d


def test_validate_data_dir_sh(small_dir: Path) -> None:
    r = run(UTILS / "validate_data_dir.sh", small_dir)
    assert r.returncode == 0, r.stderr
    (small_dir / "text").write_text("s1-a hello\ns1-b\n")
    r = run(UTILS / "validate_data_dir.sh", small_dir)
    assert r.returncode != 0
    assert "text:2" in r.stderr and "s1-b" in r.stderr
    r = run(UTILS / "fix_data_dir.sh", small_dir)
    assert r.returncode == 0, r.stderr
    assert "s1-b" in r.stderr and "empty transcript" in r.stderr
    r = run(UTILS / "validate_data_dir.sh", "--check-audio", small_dir)
    assert r.returncode == 0, r.stderr


def test_fix_data_dir_sh_check_audio(small_dir: Path, tmp_path: Path) -> None:
    """Issue #19 item 5: an unreadable wav is dropped (and named) only with --check-audio."""
    (tmp_path / "s1-b.wav").write_bytes(b"RIFF junk")
    r = run(UTILS / "validate_data_dir.sh", "--check-audio", small_dir)
    assert r.returncode != 0 and "s1-b" in r.stderr and "fix-data-dir --check-audio" in r.stderr
    r = run(UTILS / "fix_data_dir.sh", small_dir)
    assert r.returncode == 0 and "dropped 0" in r.stderr
    r = run(UTILS / "fix_data_dir.sh", "--check-audio", small_dir)
    assert r.returncode == 0, r.stderr
    assert "dropped utterance 's1-b': cannot read audio" in r.stderr and f"{tmp_path}/s1-b.wav" in r.stderr
    assert "dropped 1" in r.stderr
    r = run(UTILS / "validate_data_dir.sh", "--check-audio", small_dir)
    assert r.returncode == 0, r.stderr


def test_validate_data_dir_sh_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run(UTILS / "validate_data_dir.sh", tmp_path / "empty")
    assert r.returncode != 0 and "wav.scp" in r.stderr
    r = run(UTILS / "validate_data_dir.sh")
    assert r.returncode != 0 and "Usage" in r.stdout


def test_run_pl_keeps_the_log_of_a_run_that_did_not_finish(tmp_path: Path) -> None:
    """A rerun (e.g. a resumed training) keeps the killed or failed run's log as <log>.1, .2, ...; a finished
    run's log is overwritten as in Kaldi."""
    log = tmp_path / "log" / "train.log"
    log.parent.mkdir()
    log.write_text("# specenh train-frontend ...\n# Started at x\nstep 10/500\n")  # killed: no "Ended" line
    r = run(UTILS / "run.pl", "log/train.log", "exit 4", cwd=tmp_path)
    assert r.returncode != 0 and "kept as" in r.stderr
    assert (tmp_path / "log" / "train.log.1").read_text().endswith("step 10/500\n")
    r = run(UTILS / "run.pl", "log/train.log", "echo resumed", cwd=tmp_path)  # the failed run's log goes to .2
    assert r.returncode == 0 and "resumed" in log.read_text()
    assert "Ended (code 4)" in (tmp_path / "log" / "train.log.2").read_text()
    r = run(UTILS / "run.pl", "log/train.log", "echo again", cwd=tmp_path)  # a finished log is overwritten
    assert r.returncode == 0 and "again" in log.read_text() and not (tmp_path / "log" / "train.log.3").exists()


def test_step_reruns_when_its_inputs_were_rewritten(tmp_path: Path) -> None:
    """step_inputs="FILE..." step NAME CMD: skipped while the files are unchanged, rerun once one is rewritten
    (stage 1/2's validation after the data were remade with another seed)."""
    import os
    import time

    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("u1 /x.wav\n")
    script = (f"set -e; done_dir={tmp_path}/done; source {UTILS}/step.sh; "
              f"step_inputs='{data}/wav.scp' step check bash -c 'echo ran >> {tmp_path}/count'")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for _ in range(2):
        subprocess.run(["bash", "-c", script], check=True, env=env, capture_output=True)
    assert (tmp_path / "count").read_text().count("ran") == 1
    time.sleep(0.01)
    (data / "wav.scp").write_text("u1 /y.wav\n")
    r = subprocess.run(["bash", "-c", script], check=True, env=env, capture_output=True, text=True)
    assert (tmp_path / "count").read_text().count("ran") == 2 and "redo check" in r.stderr
