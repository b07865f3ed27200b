"""Fault injection (issue #19 item 4): stage-2 jobs under utils/run.pl killed with ``kill -9`` mid-stage,
then rerun at once with other options. The rerun must either be refused with a message naming the
live PIDs, or produce exactly the outputs of a clean run with the new options: never a mix of both."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.data.kaldi import DataDir, read_kv, save_data_dir
from specenh.degrade.apply import degrade_data_dir
from specenh.utils.lock import LOCK_NAME

REPO = Path(__file__).resolve().parents[1]
RUN_PL = REPO / "utils" / "run.pl"
CONDITION = REPO / "conf" / "degrade" / "reverb.yaml"  # ~0.1 s per utterance: jobs last a few seconds
SR = 16000
N_UTTS = 160
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "LC_ALL": "C"}
COMPARED = ("text", "utt2spk", "spk2utt", "utt2dur", "clean.scp", "utt2gain", "utt2cond", "condition.yaml")


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src")
    (root / "wav").mkdir()
    d = DataDir(wav_scp={}, utt2spk={}, text={})
    rng = np.random.default_rng(0)
    for i in range(N_UTTS):
        utt = f"spk{i % 3}-u{i:03d}"
        sf.write(root / "wav" / f"{utt}.wav", (0.1 * rng.standard_normal(int(1.5 * SR))).astype(np.float32), SR)
        d.wav_scp[utt], d.utt2spk[utt], d.text[utt] = str(root / "wav" / f"{utt}.wav"), f"spk{i % 3}", "a few words"
    save_data_dir(d, root / "data")
    return root / "data"


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory) -> Path:
    """A clean, uninterrupted run with the rerun's options (seed 1; any nj gives the same bytes)."""
    root = tmp_path_factory.mktemp("ref")
    degrade_data_dir(src, CONDITION, root / "out", root / "wav", seed=1, progress=False)
    return root / "out"


def _degrade_cmd(src: Path, work: Path, *, nj: int, seed: int) -> list[str]:
    return [str(RUN_PL), f"JOB=1:{nj}", str(work / "out" / "log" / "degrade.JOB.log"),
            sys.executable, "-m", "specenh.cli", "degrade", "--src-dir", str(src), "--condition", str(CONDITION),
            "--out-dir", str(work / "out"), "--wav-dir", str(work / "wav"), "--seed", str(seed), "--nj", str(nj),
            "--job", "JOB"]


def _wait_mid_stage(work: Path, n: int, timeout: float = 60.0) -> None:
    """Until both jobs of the first run hold the output lock and ``n`` wavs are written."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        wav_dir = work / "wav"
        if len(_lock_pids(work / "out")) == 2 and wav_dir.is_dir() and len(list(wav_dir.glob("*.wav"))) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the first run did not get {n} wavs written by 2 jobs in {timeout} s")


def _lock_pids(out: Path) -> list[int]:
    lock = out / LOCK_NAME
    return [int(line.split()[0]) for line in lock.read_text().splitlines() if line.strip()] if lock.is_file() else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _rerun_and_check(src: Path, work: Path, reference: Path) -> str:
    """Rerun at once with --nj 4 --seed 1 (+ merge); return "refused" or "identical"."""
    r = subprocess.run(_degrade_cmd(src, work, nj=4, seed=1), env=ENV, capture_output=True, text=True, timeout=120)
    logs = "".join(p.read_text() for p in sorted((work / "out" / "log").glob("degrade.*.log")))
    if r.returncode != 0:
        # refused: the message (run.pl's summary and the job log) names the live PIDs
        assert "being written by another run's live worker(s): PID" in r.stderr, r.stderr + logs
        return "refused"
    m = subprocess.run([sys.executable, "-m", "specenh.cli", "degrade", "--out-dir", str(work / "out"), "--nj", "4",
                        "--merge"], env=ENV, capture_output=True, text=True, timeout=60)
    assert m.returncode == 0, m.stderr
    out = work / "out"
    for name in COMPARED:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    wavs, ref_wavs = read_kv(out / "wav.scp"), read_kv(reference / "wav.scp")
    assert list(wavs) == list(ref_wavs)
    for utt in wavs:
        assert Path(wavs[utt]).read_bytes() == Path(ref_wavs[utt]).read_bytes(), f"{utt}: not the seed-1 output"
    return "identical"


def test_group_kill_then_rerun_with_other_options(src, reference, tmp_path) -> None:
    """The recipe's process group killed with kill -9 mid-stage: no worker survives (they share run.pl's
    group), the rerun takes the stale locks over and writes exactly the clean run's outputs."""
    first = subprocess.Popen(_degrade_cmd(src, tmp_path, nj=2, seed=0), env=ENV, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_mid_stage(tmp_path, 3)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    workers = _lock_pids(tmp_path / "out")
    assert len(workers) == 2  # both jobs had registered; killed, they could not unregister
    assert _rerun_and_check(src, tmp_path, reference) == "identical"
    logs = "".join(p.read_text() for p in (tmp_path / "out" / "log").glob("degrade.*.log"))
    assert all(f"stale lock of PID {pid}" in logs for pid in workers)
    assert not any(_alive(pid) for pid in workers)


def test_launcher_kill_then_rerun_with_other_options(src, reference, tmp_path) -> None:
    """Only run.pl killed with kill -9 (its jobs not signalled by anyone): the jobs die with it
    (PR_SET_PDEATHSIG); an immediate rerun is refused naming PIDs still alive at that instant, or
    matches the clean run. Either way no old worker is left running and nothing is mixed."""
    first = subprocess.Popen(_degrade_cmd(src, tmp_path, nj=2, seed=0), env=ENV, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_mid_stage(tmp_path, 2)
        workers = _lock_pids(tmp_path / "out")  # before the kill: dying of SIGTERM, workers release the lock
    finally:
        os.kill(first.pid, signal.SIGKILL)  # run.pl alone
        killed_at = time.time()
        first.wait()
    assert len(workers) == 2
    gone_at: list[float] = []

    def watch() -> None:  # when the last old worker is gone (they had seconds of work left)
        while any(_alive(pid) for pid in workers) and time.time() - killed_at < 30:
            time.sleep(0.02)
        gone_at.append(time.time())

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = _rerun_and_check(src, tmp_path, reference)
    watcher.join()
    assert gone_at[0] - killed_at < 1.5, f"old workers outlived run.pl by {gone_at[0] - killed_at:.1f} s"
    if outcome == "refused":  # once they are gone, the same rerun goes through
        assert _rerun_and_check(src, tmp_path, reference) == "identical"


# ---------------------------------------------------------------- the output lock itself


def test_lock_rules(tmp_path) -> None:
    """Jobs of one run share a dir; another run, the same job twice, or a merge beside a job are refused;
    a worker on another host cannot be checked and the message says how to clear it."""
    from specenh.utils.lock import EXCLUSIVE, LOCK_NAME, Holder, LockError, _start_time, acquire, release

    def live_line(pid: int, run: str, job: str, host: str | None = None) -> str:
        import socket

        return Holder(pid, _start_time(pid), host or socket.gethostname(), run, job).line()

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(live_line(sleeper.pid, "runA", "j1"))
        me = acquire(tmp_path, "runA", "j2")  # same run, other job: fine
        release(tmp_path, me)
        for run, job in (("runA", "j1"), ("runB", "j2"), (EXCLUSIVE, "merge")):
            with pytest.raises(LockError, match=rf"PID {sleeper.pid} \(job j1\).*kill {sleeper.pid}"):
                acquire(tmp_path, run, job)
        (tmp_path / LOCK_NAME).write_text(live_line(sleeper.pid, "runA", "j1", host="node-elsewhere"))
        with pytest.raises(LockError, match=r"on host node-elsewhere.*cannot be checked from here: if they are gone, "
                                            rf"delete {tmp_path / LOCK_NAME}"):
            acquire(tmp_path, "runB", "j1")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lock_released_on_sigterm(tmp_path) -> None:
    """A worker stopped with SIGTERM (a dying launcher, scancel) removes its line before exiting."""
    from specenh.utils.lock import LOCK_NAME

    code = ("import sys, time; from specenh.utils.lock import output_lock\n"
            f"with output_lock({str(tmp_path)!r}, 'r', 'j'):\n"
            "    print('in', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "in"
    assert _lock_pids(tmp_path) == [p.pid]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 143
    assert (tmp_path / LOCK_NAME).read_text() == ""
