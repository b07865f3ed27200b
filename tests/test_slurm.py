"""utils/slurm.pl against a real Slurm (a one-node cluster: tests/slurm/setup_cluster.sh, as root).

Tests marked `slurm` skip with a message when no cluster answers; the three at the top need no
cluster (they check the messages and the fallback to run.pl inside an allocation).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_recipe_mini import TINY_ASR, make_recipe_copy

REPO = Path(__file__).resolve().parents[1]
SLURM_PL = REPO / "utils" / "slurm.pl"
RUN_PL = REPO / "utils" / "run.pl"
CONF = REPO / "conf" / "slurm.conf"
FOOTER = re.compile(r"^# Ended \(code (\d+)\) at .+, elapsed time \d+ seconds$")
RECIPE_ARGS = ["--nj", "2", "--train_data", "precomputed", "--local_data_opts", "--num_train 12 --num_dev 4 --num_test 4",
               "--train_conditions", "noise_5db", "--test_conditions", "bandlimit_2k", "--asr_args", TINY_ASR]
# stages 1-3 without the reference ASR's training (test_mini_cmd_slurm_equals_local)
NO_ASR_ARGS = ["--asr_model", "stt_en_conformer_ctc_small", "--feature_config", "conf/asr/conformer_ctc_mini.yaml"]


def cluster_problem() -> str | None:
    """None when sbatch is installed and a node is ready to run jobs, else why not."""
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    states = p.stdout.split()
    if p.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states):
        return f"no usable node (sinfo: {(p.stdout + p.stderr).strip()[:200] or 'nothing'})"
    return None


@pytest.fixture(scope="module")
def cluster():
    why = cluster_problem()
    if why:
        pytest.skip(f"no Slurm cluster ({why}); start one as root with tests/slurm/setup_cluster.sh")


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    e["PATH"] = f"{Path(sys.executable).parent}:{e['PATH']}"
    e.update(extra)
    return e


def slurm_pl(cwd: Path, *args: str, env_extra: dict | None = None, timeout: int = 180):
    return subprocess.run([str(SLURM_PL), "--config", str(CONF), *args], cwd=cwd, env=env(**(env_extra or {})),
                          capture_output=True, text=True, timeout=timeout)


def footer_code(log: Path) -> int:
    m = FOOTER.match(log.read_text().splitlines()[-1])
    assert m, log.read_text()
    return int(m.group(1))


def counts(d: Path, n: int) -> list[int]:
    return [len((d / f"count.{i}").read_text().split()) if (d / f"count.{i}").exists() else 0
            for i in range(1, n + 1)]


def submissions(d: Path, name: str) -> list[str]:
    """The array indices of each submission, from q/<name>.submitted."""
    lines = (d / "log" / "q" / f"{name}.submitted").read_text().splitlines()
    return [ln.split(" array ")[1].split()[0] for ln in lines]


# ---------------------------------------------------------------- no cluster needed

def test_sbatch_missing_is_a_clear_error(tmp_path):
    p = subprocess.run([sys.executable, str(SLURM_PL), "JOB=1:2", "log/x.JOB.log", "true"], cwd=tmp_path,
                       env=dict(env(), PATH="/nonexistent"), capture_output=True, text=True)
    assert p.returncode != 0 and "'sbatch' not found" in p.stderr and "--cmd local" in p.stderr


def test_config_errors(tmp_path):
    p = subprocess.run([sys.executable, str(SLURM_PL), "--config", str(CONF), "--qos", "high", "log/x.log", "true"],
                       cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert p.returncode != 0 and "no 'option qos=*'" in p.stderr
    (tmp_path / "bad.conf").write_text("option mem=* --mem=$0\nbogus line\n")
    p = subprocess.run([sys.executable, str(SLURM_PL), "--config", "bad.conf", "log/x.log", "true"],
                       cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert p.returncode != 0 and "bad.conf:2: unknown directive 'bogus'" in p.stderr


def test_inside_an_allocation_runs_locally(tmp_path):
    """SLURM_JOB_ID set (a recipe started with sbatch): no nested submission, run.pl runs the jobs."""
    fake = tmp_path / "bin"  # an sbatch that must not be called
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\ntouch \"$(dirname \"$0\")/called\"; exit 1\n")
    (fake / "sbatch").chmod(0o755)
    p = subprocess.run([sys.executable, str(SLURM_PL), "--mem", "1G", "JOB=1:2", "log/x.JOB.log", "echo job JOB"],
                       cwd=tmp_path, env=env(SLURM_JOB_ID="4242", PATH=f"{fake}:{os.environ['PATH']}"),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert not (fake / "called").exists()
    assert "inside Slurm job 4242" in p.stderr
    for i in (1, 2):
        log = tmp_path / "log" / f"x.{i}.log"
        assert f"job {i}" in log.read_text() and footer_code(log) == 0
    assert not (tmp_path / "log" / "q").exists()


# ---------------------------------------------------------------- a real cluster

@pytest.mark.slurm
def test_array_logs_look_like_run_pl(cluster, tmp_path):
    # (JOB is replaced everywhere, as in run.pl: ${SLURM_ARRAY_JOB_ID} would become ..._1_ID)
    cmd = "echo task JOB index ${SLURM_ARRAY_TASK_ID} host $(hostname -s)"
    p = slurm_pl(tmp_path, "--mem", "100M", "--num-threads", "1", "JOB=1:3", "log/x.JOB.log", cmd)
    assert p.returncode == 0, p.stderr
    assert submissions(tmp_path, "x") == ["1-3"]  # one array of three tasks
    local = subprocess.run([str(RUN_PL), "JOB=1:3", "log/r.JOB.log", cmd], cwd=tmp_path, env=env())
    assert local.returncode == 0
    for i in (1, 2, 3):
        lines = (tmp_path / "log" / f"x.{i}.log").read_text().splitlines()
        ref = (tmp_path / "log" / f"r.{i}.log").read_text().splitlines()
        assert lines[0] == ref[0] == f"# {cmd.replace('JOB', str(i))} "
        assert lines[1].startswith("# Started at ") and lines[2] == "#"
        assert re.fullmatch(rf"task {i} index {i} host \S+", lines[3]), lines  # ran as array task i
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[-2])
        assert footer_code(tmp_path / "log" / f"x.{i}.log") == 0
        assert (tmp_path / "log" / "q" / f"x.{i}.status").read_text().strip() == "0"
        assert len(lines) == len(ref) and lines[-2].split("=")[0] == ref[-2].split("=")[0]
    script = (tmp_path / "log" / "q" / "x.sh").read_text()
    assert f"cd {tmp_path}" in script and "--mem=100M" in script and "--cpus-per-task=1" in script


@pytest.mark.slurm
def test_single_job_without_range(cluster, tmp_path):
    p = slurm_pl(tmp_path, "log/one.log", "echo", "two words", "|", "wc", "-w")
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "log" / "one.log").read_text()
    assert "\n2\n" in text and footer_code(tmp_path / "log" / "one.log") == 0


@pytest.mark.slurm
def test_failed_task_named_and_only_it_rerun(cluster, tmp_path):
    cmd = "echo ran >> count.JOB; [ JOB != 2 ] || [ -f flag ] || exit 3"
    p = slurm_pl(tmp_path, "JOB=1:3", "log/f.JOB.log", cmd)
    assert p.returncode != 0
    assert "task 2 of Slurm job" in p.stderr and "(code 3)" in p.stderr and "log/f.2.log" in p.stderr
    assert "task 1 " not in p.stderr and "task 3 " not in p.stderr
    assert footer_code(tmp_path / "log" / "f.2.log") == 3
    (tmp_path / "flag").touch()
    p = slurm_pl(tmp_path, "JOB=1:3", "log/f.JOB.log", cmd)
    assert p.returncode == 0, p.stderr
    assert counts(tmp_path, 3) == [1, 2, 1]  # only task 2 ran again
    assert submissions(tmp_path, "f") == ["1-3", "2"]
    assert footer_code(tmp_path / "log" / "f.2.log") == 0
    # once everything succeeded, calling again is a new request: every task runs
    assert slurm_pl(tmp_path, "JOB=1:3", "log/f.JOB.log", cmd).returncode == 0
    assert counts(tmp_path, 3) == [2, 3, 2]


@pytest.mark.slurm
def test_killed_task_only_it_resubmitted(cluster, tmp_path):
    cmd = "echo ran >> count.JOB; if [ JOB = 2 ] && [ ! -e started.2 ]; then touch started.2; sleep 600; fi"
    proc = subprocess.Popen([str(SLURM_PL), "--config", str(CONF), "JOB=1:3", "log/k.JOB.log", cmd], cwd=tmp_path,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "started.2").exists():
        assert time.time() < deadline and proc.poll() is None, "task 2 never started"
        time.sleep(0.2)
    job_id = (tmp_path / "log" / "q" / "k.submitted").read_text().split()[3]
    subprocess.run(["scancel", f"{job_id}_2"], check=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"task 2 of Slurm job {job_id}" in err and "log/k.2.log" in err and "task 1 " not in err, err
    assert footer_code(tmp_path / "log" / "k.2.log") == 143  # SIGTERM from scancel, recorded in the log
    p = slurm_pl(tmp_path, "JOB=1:3", "log/k.JOB.log", cmd)
    assert p.returncode == 0, p.stderr
    assert submissions(tmp_path, "k") == ["1-3", "2"]
    assert counts(tmp_path, 3) == [1, 2, 1]


@pytest.mark.slurm
def test_ctrl_c_cancels_the_array(cluster, tmp_path):
    proc = subprocess.Popen([str(SLURM_PL), "--config", str(CONF), "JOB=1:2", "log/c.JOB.log", "sleep 600"],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sub = tmp_path / "log" / "q" / "c.submitted"
    deadline = time.time() + 60
    while not sub.exists():
        assert time.time() < deadline
        time.sleep(0.2)
    job_id = sub.read_text().split()[3]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and f"cancelled Slurm job {job_id}" in err
    for _ in range(50):
        q = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if not q.stdout.strip():
            break
        time.sleep(0.2)
    assert not q.stdout.strip(), q.stdout


def tree(root: Path) -> dict[str, Path]:
    """Output files under root, by relative path, without per-job logs (they hold dates)."""
    return {str(p.relative_to(root)): p for p in root.rglob("*")
            if p.is_file() and "log" not in p.relative_to(root).parts}


def load_feats(recipe: Path) -> dict[str, dict]:
    import kaldiio  # relative ark paths in feats.scp resolve against the recipe dir

    out, cwd = {}, os.getcwd()
    os.chdir(recipe)
    try:
        for scp in sorted((recipe / "dump" / "feats").glob("*/feats.scp")):
            out[scp.parent.name] = {k: v.copy() for k, v in kaldiio.load_scp(str(scp.relative_to(recipe))).items()}
    finally:
        os.chdir(cwd)
    return out


def wait_batch_job(job_id: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip():
        assert time.time() < deadline, f"batch job {job_id} still running after {timeout} s"
        time.sleep(1)


@pytest.mark.slurm
@pytest.mark.e2e
def test_mini_cmd_slurm_equals_local(cluster, tmp_path):
    """egs/mini stages 1-3: (b) --cmd slurm from the login node (job arrays) against (a) the same
    recipe sbatch-ed whole into one allocation with the local backend. Outputs equal byte for byte.

    Stage 1 never goes through $cmd: the local run reuses the Slurm run's stage-1 output to save time.
    The reference ASR is not trained (a pretrained ASR is named, its features given by the mini config, and
    stages 1-3 never load it): this test is about data-parallel steps."""
    arr = make_recipe_copy(tmp_path / "arrays")
    ref = make_recipe_copy(tmp_path / "alloc")
    t0 = time.time()
    p = subprocess.run(["./run.sh", "--stage", "1", "--stop-stage", "3", "--cmd", "slurm", *RECIPE_ARGS, *NO_ASR_ARGS],
                       cwd=arr, env=env(), capture_output=True, text=True, timeout=900)
    t_arrays = time.time() - t0
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    # every data-parallel step went through one job array of 2 tasks
    subs = sorted(arr.glob("**/log/q/*.submitted"))
    assert len(subs) == 3 + 6, subs  # 3 degradations, 6 feature sets
    assert all(s.read_text().split()[5] == "1-2" for s in subs)
    assert footer_code(arr / "dump" / "feats" / "test" / "log" / "extract.2.log") == 0

    for s in ("train", "dev", "test"):  # stage 1's output; its wav.scp holds absolute paths
        shutil.copytree(arr / "data" / s, ref / "data" / s)
        for f in (ref / "data" / s).iterdir():
            f.write_bytes(f.read_bytes().replace(bytes(arr), bytes(ref)))
    shutil.copy(arr / "data" / "voices.json", ref / "data")
    shutil.copytree(arr / "dump" / "wav" / "mini", ref / "dump" / "wav" / "mini")
    t0 = time.time()
    sb = subprocess.run(["sbatch", "--parsable", f"--chdir={ref}", "--output=sbatch.out", "--cpus-per-task=2",
                         "run.sh", "--stage", "2", "--stop-stage", "3", *RECIPE_ARGS, *NO_ASR_ARGS],
                        cwd=ref, env=env(), capture_output=True, text=True, timeout=60)
    assert sb.returncode == 0, sb.stderr
    wait_batch_job(sb.stdout.strip().split(";")[0], timeout=900)
    t_alloc = time.time() - t0
    out = (ref / "sbatch.out").read_text()
    assert "Finished stages 2..3" in out, out[-4000:]
    assert not list(ref.glob("**/log/q"))  # local backend inside the allocation: no arrays
    print(f"\negs/mini stages 1-3 --cmd slurm: {t_arrays:.0f} s; stages 2-3 in one allocation: {t_alloc:.0f} s")

    a, b = tree(arr), tree(ref)
    a.pop("sbatch.out", None), b.pop("sbatch.out", None)
    outputs = {k for k in a if k.startswith(("data/", "dump/"))}
    assert outputs == {k for k in b if k.startswith(("data/", "dump/"))}
    assert any(k.startswith("dump/wav/test_bandlimit_2k/") for k in outputs)
    # byte for byte, after the recipe's own location (provenance in condition.yaml, meta.yaml) is blanked
    # (done markers hold a time of day: they are compared by existence above, not by bytes)
    differ = [k for k in sorted(outputs) if not (k.endswith(".done") or "/.done/" in k) and a[k].read_bytes().replace(bytes(arr), b"<recipe>")
              != b[k].read_bytes().replace(bytes(ref), b"<recipe>")]
    assert not differ, differ
    assert len(outputs) > 50
    fa, fb = load_feats(arr), load_feats(ref)
    assert set(fa) == set(fb) == {"train", "dev", "test", "train_noise_5db", "dev_noise_5db", "test_bandlimit_2k"}
    for s in fa:
        assert fa[s].keys() == fb[s].keys() and len(fa[s]) > 0
        for u in fa[s]:
            assert fa[s][u].tobytes() == fb[s][u].tobytes(), (s, u)
