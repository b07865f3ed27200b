"""Output-dir locks: a step refuses to start while another run's workers still write its outputs.

A worker (one job of ``specenh degrade`` or ``specenh extract-feats``) registers itself in
``<out_dir>/.specenh.lock``, one line per live worker::

    <pid> <process start time> <host> <run key> <job>

and removes its line when it ends. The run key identifies the settings (a hash of everything that
determines the outputs), so the jobs of one run share the directory while a worker of another
run, or a second worker for the same job, is refused with the PIDs that hold it. Lines of dead
processes (killed with ``kill -9``: they could not remove their line) are stale: they are dropped,
with a log line, and the lock is taken over. The start time guards against a reused PID; a worker
on another host (a shared file system under Slurm) cannot be checked and counts as live.

Updates happen under ``fcntl.flock`` on the lock file itself; the file is never deleted (deleting a
file another process is waiting to lock would split the lock), an empty one means "free".
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

LOCK_NAME = ".specenh.lock"
EXCLUSIVE = "*"  # run key of a step that must be alone (a merge): conflicts with every other holder


class LockError(RuntimeError):
    """The output is held by live workers of another run; the message names the PIDs and the lock file."""


@dataclass(frozen=True)
class Holder:
    """One line of a lock file."""

    pid: int
    start: str  # /proc start time in clock ticks ("-" where unknown)
    host: str
    run: str
    job: str

    def line(self) -> str:
        return f"{self.pid} {self.start} {self.host} {self.run} {self.job}\n"

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on host {self.host}"
        return f"PID {self.pid}{where} (job {self.job})"


def run_key(*parts: object) -> str:
    """A short hash of the settings that determine a step's outputs."""
    return hashlib.sha1("\0".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:12]


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, None where unreadable (gone, or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state is field 3, start time 22
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _start_time(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat[1] if stat else "-"


def is_alive(h: Holder) -> bool:
    """Whether the holder's process still runs (a zombie or a reused PID does not count)."""
    if h.host != socket.gethostname():
        return True  # cannot tell: assume it runs
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(h.pid)
    if stat is None:
        return True  # no /proc: os.kill said it exists
    state, start = stat
    return state not in ("Z", "X") and (h.start == "-" or start == h.start)


def _parse(path: Path, text: str) -> list[Holder]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            out.append(Holder(int(parts[0]), parts[1], parts[2], parts[3], parts[4]))
        except (IndexError, ValueError):
            log.warning("%s:%d: malformed lock line %r ignored", path, lineno, line)
    return out


@contextmanager
def _locked_file(path: Path) -> Iterator:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _rewrite(f, holders: list[Holder]) -> None:
    f.seek(0)
    f.truncate()
    f.write("".join(h.line() for h in holders))
    f.flush()


def _conflicts(h: Holder, run: str, job: str) -> bool:
    if h.pid == os.getpid() and h.host == socket.gethostname():
        return False  # this process (a job that merges at its end)
    return run == EXCLUSIVE or h.run == EXCLUSIVE or h.run != run or h.job == job


def acquire(directory: str | Path, run: str, job: str, what: str = "step") -> Holder:
    """Register this process as a writer of ``directory``; raise LockError if live workers of another
    run (or of the same job) hold it. ``run``: :func:`run_key` of the settings, or EXCLUSIVE."""
    path = Path(directory) / LOCK_NAME
    me = Holder(os.getpid(), _start_time(os.getpid()), socket.gethostname(), run, job)
    with _locked_file(path) as f:
        holders = _parse(path, f.read())
        live = []
        for h in holders:
            if is_alive(h):
                live.append(h)
            else:
                log.warning("%s: stale lock of %s taken over: that process is gone (killed?)", path, h.describe())
        blocking = [h for h in live if _conflicts(h, run, job)]
        if blocking:
            pids = " ".join(str(h.pid) for h in blocking if h.host == me.host)
            remote = sorted({h.host for h in blocking if h.host != me.host})
            how = f"stop them (kill {pids})" if pids else "stop them"
            if remote:
                how += (f"; workers on {', '.join(remote)} cannot be checked from here: if they are gone, delete "
                        f"{path}")
            raise LockError(
                f"{what} refused: {directory} is being written by another run's live worker(s): "
                f"{', '.join(h.describe() for h in blocking)}. Wait for them to finish or {how}, then rerun "
                f"(lock file: {path})")
        _rewrite(f, [h for h in live if not (h.pid == me.pid and h.job == job)] + [me])
    return me


def release(directory: str | Path, me: Holder) -> None:
    """Remove this process's line (the file stays, empty when no one holds it)."""
    path = Path(directory) / LOCK_NAME
    if not path.is_file():
        return
    with _locked_file(path) as f:
        holders = _parse(path, f.read())
        _rewrite(f, [h for h in holders if h != me])


def _exit_on_sigterm(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def output_lock(directory: str | Path, run: str, job: str, what: str = "step") -> Iterator[Holder]:
    """``acquire`` on entry, ``release`` on exit (also on an exception, and on SIGTERM, e.g. from a
    dying launcher or ``scancel``, which exits with 143; only ``kill -9`` leaves a stale line)."""
    me = acquire(directory, run, job, what)
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield me
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        release(directory, me)


def holders(directory: str | Path) -> list[Holder]:
    """The live holders of ``directory``'s lock (for messages and tests)."""
    path = Path(directory) / LOCK_NAME
    if not path.is_file():
        return []
    return [h for h in _parse(path, path.read_text(encoding="utf-8")) if is_alive(h)]
