#!/usr/bin/env python3
"""Run a command as N local parallel jobs, Kaldi style (stdlib only; the name run.pl is the convention).

Usage:
  utils/run.pl [options] JOB=1:N log/x.JOB.log command args...
  utils/run.pl [options] log/x.log command args...

Every occurrence of the job variable (JOB, or whatever name precedes '=') in the command and the
log path is replaced by the job index. Each job runs under bash with stdout+stderr in its log,
which starts with the command and the start time and ends with:
  # Accounting: time=<s> threads=1
  # Ended (code <rc>) at <date>, elapsed time <s> seconds
Exit status is 0 only if every job succeeded; failed jobs and their logs are listed on stderr,
each with the last error line of its log.

Jobs never outlive run.pl: they stay in its process group (a kill of the caller's process group,
e.g. Ctrl-C or `kill -9 -PGID`, reaches them), each job's shell gets SIGTERM when run.pl dies even
of `kill -9` (PR_SET_PDEATHSIG; specenh subcommands under it do the same through
SPECENH_DIE_WITH_PARENT), and on SIGINT/SIGTERM run.pl terminates every process of every job
(SIGKILL after KILL_GRACE_S seconds) before it exits.

A single command argument is run as a shell string as is (pipes allowed); with several, arguments
without whitespace are passed verbatim (so `\\|` in the caller becomes a pipe) and the others are
quoted.

Options:
  --max-jobs-run N   run at most N jobs at a time (default: number of CPUs)
  --mem X, --gpu N, --num-threads N, --time T, --config F
                     accepted and ignored, so $cmd lines also work with utils/slurm.pl;
                     any other --option value pair is ignored with a warning.
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROG = "run.pl"
IGNORED_OPTIONS = {"mem", "gpu", "num_threads", "time", "config"}
JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
KILL_GRACE_S = 5.0  # SIGTERM, then SIGKILL what is left of the jobs after this long
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DEATHSIG_ENV = "SPECENH_DIE_WITH_PARENT"  # tells specenh subcommands to set their own death signal


class UsageError(Exception):
    """Bad command line; printed with the usage hint."""


@dataclass
class Spec:
    """A parsed command line."""

    max_jobs: int
    var: str | None
    first: int
    last: int
    log: str
    command: str


def default_max_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def join_command(args: list[str]) -> str:
    """The shell command line: a single argument as is, else whitespace-free args verbatim."""
    if len(args) == 1:
        return args[0]
    return " ".join(a if a and not re.search(r"\s", a) else shlex.quote(a) for a in args)


def parse_args(argv: list[str]) -> Spec:
    max_jobs = default_max_jobs()
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        opt, eq, val = argv[i][2:].partition("=")
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError(f"option --{opt} needs a value")
            val = argv[i + 1]
            i += 1
        i += 1
        name = opt.replace("-", "_")
        if name == "max_jobs_run":
            if not val.isdigit() or int(val) < 1:
                raise UsageError(f"--max-jobs-run needs a positive integer, got {val!r}")
            max_jobs = int(val)
        elif name not in IGNORED_OPTIONS:
            print(f"{PROG}: ignoring option --{opt} {val}", file=sys.stderr)
    var, first, last = None, 1, 1
    if i < len(argv):
        m = JOB_RANGE.match(argv[i])
        if m:
            var, first = m.group(1), int(m.group(2))
            last = int(m.group(3)) if m.group(3) is not None else first
            i += 1
            if first > last:
                raise UsageError(f"empty job range {argv[i - 1]!r}")
    if len(argv) - i < 2:
        raise UsageError("need a log file and a command")
    log, command = argv[i], join_command(argv[i + 1:])
    if var is not None and last > first and var not in log:
        raise UsageError(f"{last - first + 1} jobs would share the log {log!r}: put {var} in its name")
    return Spec(max_jobs, var, first, last, log, command)


def substitute(text: str, var: str | None, job: int) -> str:
    return text.replace(var, str(job)) if var else text


def date_string() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def _load_prctl():
    """libc's prctl, resolved before any fork (None where not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent(parent: int):
    """A Popen preexec_fn: the job's process gets SIGTERM when run.pl dies, however it dies."""

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # run.pl died before the death signal was armed
            os._exit(143)

    return preexec


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc; just ``root`` where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return [root]
    for e in entries:
        try:
            with open(f"/proc/{e}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def signal_pids(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def last_error_line(log: str, max_len: int = 300) -> str | None:
    """The last line of a job's log that reports an error (what the user needs first)."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()[-200:]
    except OSError:
        return None
    for line in reversed(lines):
        if re.search(r"\bERROR\b|Error\b|error:", line) and not line.startswith("# "):
            line = line.strip()
            return line if len(line) <= max_len else line[: max_len - 3] + "..."
    return None



def keep_unfinished(log: Path) -> Path | None:
    """A log whose run did not end with code 0 (killed, failed) is renamed to ``<log>.1`` (``.2``, ... if
    taken) before a rerun writes ``log``, so a resumed run never wipes the record of the run it resumes.
    A finished run's log is overwritten, as in Kaldi. Returns the new name, if any."""
    if not log.is_file() or log.stat().st_size == 0:
        return None
    with open(log, "rb") as f:
        f.seek(max(0, log.stat().st_size - 4096))
        tail = f.read().decode("utf-8", errors="replace")
    if "# Ended (code 0)" in tail:
        return None
    n = 1
    while log.with_name(f"{log.name}.{n}").exists():
        n += 1
    kept = log.with_name(f"{log.name}.{n}")
    log.rename(kept)
    print(f"{PROG}: {log} is the log of a run that did not finish; kept as {kept}", file=sys.stderr)
    return kept


class Runner:
    """Runs the jobs with bounded parallelism; kills them all on SIGINT/SIGTERM."""

    def __init__(self, spec: Spec) -> None:  # noqa: D107
        self.spec = spec
        self.slots = threading.Semaphore(spec.max_jobs)
        self.lock = threading.Lock()
        self.procs: dict[int, subprocess.Popen] = {}
        self.codes: dict[int, int] = {}
        self.stopping = False

    def run_job(self, job: int) -> None:
        cmd = substitute(self.spec.command, self.spec.var, job)
        log = Path(substitute(self.spec.log, self.spec.var, job))
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            keep_unfinished(log)
            with open(log, "w", encoding="utf-8") as f:
                f.write(f"# {cmd} \n# Started at {date_string()}\n#\n")
                f.flush()
                start = time.time()
                code = self._execute(job, cmd, f)
                elapsed = int(round(time.time() - start))
                f.write(f"# Accounting: time={elapsed} threads=1\n")
                f.write(f"# Ended (code {code}) at {date_string()}, elapsed time {elapsed} seconds\n")
        except OSError as e:
            print(f"{PROG}: job {job}: cannot write log {log}: {e}", file=sys.stderr)
            code = 1
        with self.lock:
            self.codes[job] = code

    def _execute(self, job: int, cmd: str, log_file) -> int:
        with self.lock:
            if self.stopping:
                return 130
            # in run.pl's process group (a group kill reaches the job), dying with run.pl
            proc = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, preexec_fn=die_with_parent(os.getpid()),
                                    env={**os.environ, DEATHSIG_ENV: "1"})
            self.procs[job] = proc
        rc = proc.wait()
        with self.lock:
            del self.procs[job]
        return 128 - rc if rc < 0 else rc  # killed by signal s: 128 + s, as the shell reports

    def kill_all(self, signum: int, _frame=None) -> None:
        """Terminate every process of every running job; SIGKILL the rest after KILL_GRACE_S."""
        with self.lock:
            first = not self.stopping
            self.stopping = True
            pids = [p for proc in self.procs.values() for p in process_tree(proc.pid)]
        signal_pids(pids, signal.SIGTERM)
        if first:
            threading.Thread(target=self._kill_later, args=(pids,), daemon=True).start()
        print(f"{PROG}: got signal {signum}, killed running jobs", file=sys.stderr)

    def _kill_later(self, pids: list[int]) -> None:
        deadline = time.time() + KILL_GRACE_S
        while time.time() < deadline:
            with self.lock:
                if not self.procs:
                    return
            time.sleep(0.1)
        with self.lock:
            now = [p for proc in self.procs.values() for p in process_tree(proc.pid)]
        group = os.getpgrp()
        left = []
        for pid in set(pids) - set(now):  # orphaned by a dead job shell; a reused PID is not in our group
            try:
                if os.getpgid(pid) == group:
                    left.append(pid)
            except OSError:
                pass
        signal_pids(now + left, signal.SIGKILL)

    def run(self) -> int:
        threads = []
        for job in range(self.spec.first, self.spec.last + 1):
            self.slots.acquire()
            if self.stopping:
                self.slots.release()
                break
            t = threading.Thread(target=self._slot, args=(job,), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a timed join keeps the main thread responsive to signals
        return self.report()

    def _slot(self, job: int) -> None:
        try:
            self.run_job(job)
        finally:
            self.slots.release()

    def report(self) -> int:
        n = self.spec.last - self.spec.first + 1
        failed = sorted(j for j, c in self.codes.items() if c != 0)
        not_run = n - len(self.codes)
        for job in failed:
            log = substitute(self.spec.log, self.spec.var, job)
            print(f"{PROG}: job {job} failed (code {self.codes[job]}), log is in {log}", file=sys.stderr)
            err = last_error_line(log)
            if err:
                print(f"{PROG}:   {err}", file=sys.stderr)
        if failed or not_run:
            print(f"{PROG}: {len(failed)} / {n} jobs failed" + (f", {not_run} not run" if not_run else ""),
                  file=sys.stderr)
            return 1
        return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 1
    try:
        spec = parse_args(argv)
    except UsageError as e:
        print(f"{PROG}: {e}\nRun '{PROG} --help' for usage.", file=sys.stderr)
        return 1
    runner = Runner(spec)
    signal.signal(signal.SIGINT, runner.kill_all)
    signal.signal(signal.SIGTERM, runner.kill_all)
    return runner.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
