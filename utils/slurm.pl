#!/usr/bin/env python3
"""Run a command as N Slurm array tasks, with utils/run.pl's interface (stdlib only; the name slurm.pl
is the convention).

Usage:
  utils/slurm.pl [options] JOB=1:N log/x.JOB.log command args...
  utils/slurm.pl [options] log/x.log command args...

Submits ONE job array (sbatch --array) whose task i runs the command with every occurrence of the
job variable (JOB, or whatever name precedes '=') replaced by i, exactly as run.pl does, and
waits for it. Each task's log looks like a run.pl log: the command and the start time first,
  # Accounting: time=<s> threads=<n>
  # Ended (code <rc>) at <date>, elapsed time <s> seconds
last. Exit status is 0 only if every task succeeded; failed tasks and their logs are listed.

Files, next to the logs in <logdir>/q/ (<name> is the log's file name without the job variable):
  <name>.sh            the generated batch script (working directory, environment, command)
  <name>.<i>.status    task i's exit code, written when the task ends
  <name>.slurm.<i>.out Slurm's own output of task i (empty unless the batch script itself failed)
  <name>.state.json    the command, and whether its last run had failures
  <name>.submitted     one line per submission: date, Slurm job id, array indices
Rerun after a failure (same command and log, any number of times): only the tasks that failed or
never finished are resubmitted; a task is kept when its status file says 0 and its log ends with
"Ended (code 0)" for the identical command. After a run in which every task succeeded, calling
slurm.pl again runs every task again (the recipe's own step markers decide what is redone).

Options (--opt value or --opt=value):
  --config F         site settings [conf/slurm.conf; built-in defaults when that file is absent]
  --mem X, --gpu N, --num-threads N, --time T, and any NAME with an "option NAME=..." line in the
                     config: mapped to sbatch options through the config
  --max-jobs-run N   at most N tasks of the array at a time (sbatch --array=...%N)

Config file format (see conf/slurm.conf), one directive per line, '#' starts a comment:
  command sbatch ARGS...          submit command and fixed arguments
  default NAME=VALUE              value of --NAME when the caller does not give one
  option NAME=VALUE ARGS...       sbatch arguments for exactly that value (none: add nothing)
  option NAME=* ARGS...           sbatch arguments for any other value; $0 is replaced by the value

Inside a Slurm allocation (SLURM_JOB_ID set, e.g. a recipe started with sbatch) the jobs run
locally through utils/run.pl instead, with a note on stderr; set SPECENH_SLURM_NESTED=1 to submit
anyway. Ctrl-C (SIGINT/SIGTERM/SIGHUP) cancels the array with scancel.
Environment: SPECENH_SLURM_POLL_MAX (longest seconds between squeue polls [10]),
SPECENH_SLURM_STATUS_WAIT (seconds to wait for the status files of tasks that left the queue [5]).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROG = "slurm.pl"
JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
DEFAULT_CONFIG = "conf/slurm.conf"
BUILTIN_CONFIG = """\
command sbatch --export=ALL
option mem=* --mem=$0
option num_threads=* --cpus-per-task=$0
option time=* --time=$0
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""
# Variables the batch script re-exports so that it also works when resubmitted by hand
# (the full environment travels with --export=ALL).
KEEP_ENV = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
            "LC_ALL", "LANG", "MAIN_ROOT")
KEEP_ENV_PREFIX = ("SPECENH_",)


class UsageError(Exception):
    """Bad command line or configuration; printed with the usage hint."""


@dataclass
class Spec:
    """A parsed command line."""

    config: str | None
    options: dict[str, str]
    max_jobs: int | None
    var: str | None
    first: int
    last: int
    log: str
    command: str


@dataclass
class SiteConfig:
    """conf/slurm.conf: submit command, defaults and option mappings."""

    command: list[str] = field(default_factory=lambda: ["sbatch"])
    defaults: dict[str, str] = field(default_factory=dict)
    exact: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    wildcard: dict[str, list[str]] = field(default_factory=dict)

    def known(self, name: str) -> bool:
        return name in self.wildcard or any(n == name for n, _ in self.exact)

    def sbatch_args(self, given: dict[str, str]) -> list[str]:
        values = dict(self.defaults)
        values.update(given)
        args: list[str] = []
        for name, value in values.items():
            if (name, value) in self.exact:
                args += self.exact[(name, value)]
            elif name in self.wildcard:
                args += [a.replace("$0", value) for a in self.wildcard[name]]
            else:
                raise UsageError(f"no 'option {name}=*' or 'option {name}={value}' line in the config")
        return args


def parse_config(text: str, origin: str) -> SiteConfig:
    conf = SiteConfig()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"{origin}:{lineno}: {e}") from e
        kind, rest = words[0], words[1:]
        if kind == "command":
            if not rest:
                raise UsageError(f"{origin}:{lineno}: 'command' needs the submit program")
            conf.command = rest
        elif kind in ("default", "option"):
            if not rest or "=" not in rest[0]:
                raise UsageError(f"{origin}:{lineno}: expected '{kind} NAME=VALUE ...'")
            name, _, value = rest[0].partition("=")
            name = name.replace("-", "_")
            if kind == "default":
                if len(rest) > 1:
                    raise UsageError(f"{origin}:{lineno}: 'default {rest[0]}' takes nothing after the value")
                conf.defaults[name] = value
            elif value == "*":
                conf.wildcard[name] = rest[1:]
            else:
                conf.exact[(name, value)] = rest[1:]
        else:
            raise UsageError(f"{origin}:{lineno}: unknown directive {kind!r} (command, default or option)")
    for name in conf.defaults:
        if not conf.known(name):
            raise UsageError(f"{origin}: 'default {name}=...' has no 'option {name}=...' line")
    return conf


def load_config(path: str | None) -> SiteConfig:
    if path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return parse_config(BUILTIN_CONFIG, "built-in defaults")
        path = DEFAULT_CONFIG
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}") from e
    return parse_config(text, path)


def join_command(args: list[str]) -> str:
    """The shell command line, built exactly as run.pl builds it."""
    if len(args) == 1:
        return args[0]
    return " ".join(a if a and not re.search(r"\s", a) else shlex.quote(a) for a in args)


def parse_args(argv: list[str]) -> Spec:
    config, options, max_jobs = None, {}, None
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
        if name == "config":
            config = val
        elif name == "max_jobs_run":
            if not val.isdigit() or int(val) < 1:
                raise UsageError(f"--max-jobs-run needs a positive integer, got {val!r}")
            max_jobs = int(val)
        else:
            options[name] = val
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
    return Spec(config, options, max_jobs, var, first, last, log, command)


def substitute(text: str, var: str | None, job: int) -> str:
    return text.replace(var, str(job)) if var else text


def array_spec(jobs: list[int]) -> str:
    """Compact sbatch --array indices: 1-3,5,7-9."""
    parts, start = [], jobs[0]
    for a, b in zip(jobs, jobs[1:] + [None]):
        if b != a + 1:
            parts.append(str(start) if start == a else f"{start}-{a}")
            start = b
    return ",".join(parts)


def now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


BATCH_TEMPLATE = r"""#!/usr/bin/env bash
# Generated by utils/slurm.pl on {date}: one task of a job array; the task index replaces {var_shown}.
# Submitted with: {submit}
cd {cwd} || exit 1
{exports}
task=${{SLURM_ARRAY_TASK_ID:?run this script as a Slurm array task (sbatch --array)}}
command_template={command}
log_template={log}
cmd=${{command_template{subst}}}
log=${{log_template{subst}}}
status={qdir}/{name}.${{task}}.status
rm -f "${{status}}"
mkdir -p "$(dirname "${{log}}")" || exit 1
now() {{ date '+%a %b %d %H:%M:%S %Z %Y'; }}
printf '# %s \n# Started at %s\n#\n' "${{cmd}}" "$(now)" > "${{log}}" || exit 1
echo "task ${{task}} of Slurm job ${{SLURM_ARRAY_JOB_ID:-?}} (job ${{SLURM_JOB_ID:-?}}) on $(hostname) at $(now)"
start=$(date +%s)
killed=0
on_signal() {{ killed=1; kill -TERM "${{child}}" 2>/dev/null; }}
trap on_signal TERM INT HUP
bash -c "${{cmd}}" < /dev/null >> "${{log}}" 2>&1 &
child=$!
while :; do
  wait "${{child}}"; rc=$?
  kill -0 "${{child}}" 2>/dev/null || break   # wait returned early because of a signal
done
if [ "${{killed}}" = 1 ] && [ "${{rc}}" = 0 ]; then rc=143; fi
elapsed=$(( $(date +%s) - start ))
printf '# Accounting: time=%s threads={threads}\n# Ended (code %s) at %s, elapsed time %s seconds\n' \
  "${{elapsed}}" "${{rc}}" "$(now)" "${{elapsed}}" >> "${{log}}"
echo "${{rc}}" > "${{status}}.tmp" && mv -f "${{status}}.tmp" "${{status}}"
exit "${{rc}}"
"""


class ArrayRun:
    """One slurm.pl invocation: the state in q/, the submission, the wait, the report."""

    def __init__(self, spec: Spec, conf: SiteConfig) -> None:
        self.spec = spec
        self.conf = conf
        self.cwd = Path.cwd()
        log_t = Path(spec.log)
        self.log_template = str(log_t if log_t.is_absolute() else self.cwd / log_t)
        self.qdir = Path(self.log_template).parent / "q"
        base = Path(spec.log).name
        if spec.var:
            base = base.replace(spec.var, "")
        base = re.sub(r"\.log$", "", base)
        base = re.sub(r"[^A-Za-z0-9_.+-]+", "_", base).strip("._") or "job"
        self.name = base
        self.state_file = self.qdir / f"{base}.state.json"
        self.job_id: str | None = None
        self.interrupted = False

    # ------------------------------------------------------------ paths
    def log(self, job: int) -> Path:
        return Path(substitute(self.log_template, self.spec.var, job))

    def shown_log(self, job: int) -> str:
        return substitute(self.spec.log, self.spec.var, job)

    def status_file(self, job: int) -> Path:
        return self.qdir / f"{self.name}.{job}.status"

    def read_status(self, job: int) -> int | None:
        try:
            return int(self.status_file(job).read_text().strip())
        except (OSError, ValueError):
            return None

    def code_from_log(self, job: int) -> int | None:
        """The exit code in the log's footer, if the log is this command's."""
        try:
            lines = self.log(job).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        cmd = substitute(self.spec.command, self.spec.var, job)
        m = re.match(r"# Ended \(code (-?\d+)\)", lines[-1]) if lines else None
        return int(m.group(1)) if m and lines[0] == f"# {cmd} " else None

    # ------------------------------------------------------------ state
    def identity(self) -> dict:
        return {"command": self.spec.command, "log": self.log_template, "var": self.spec.var, "cwd": str(self.cwd)}

    def load_state(self) -> dict | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if all(state.get(k) == v for k, v in self.identity().items()) else None

    def save_state(self, failed: bool) -> None:
        state = dict(self.identity(), job_id=self.job_id, failed=failed, updated=now())
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(self.state_file)

    def finished_ok(self, job: int) -> bool:
        """Task done with code 0 for the identical command: status file 0 and the log agrees."""
        return self.read_status(job) == 0 and self.code_from_log(job) == 0

    def jobs_to_run(self) -> list[int]:
        every = list(range(self.spec.first, self.spec.last + 1))
        state = self.load_state()
        if not state or not state.get("failed"):
            return every
        old = state.get("job_id")
        if old and self.in_queue(old):
            raise UsageError(f"the previous array {old} for {self.spec.log} is still queued or running: "
                             f"wait for it or 'scancel {old}', then rerun")
        todo = [j for j in every if not self.finished_ok(j)]
        if len(todo) < len(every):
            print(f"{PROG}: rerun: {len(every) - len(todo)} of {len(every)} tasks already finished with code 0; "
                  + (f"submitting {array_spec(todo)}" if todo else "nothing to submit"), file=sys.stderr)
        return todo

    # ------------------------------------------------------------ Slurm
    def squeue(self, job_id: str) -> tuple[bool, list[str]]:
        """(answered, states of the array's tasks still in the queue)."""
        try:
            p = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                               timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False, []
        if p.returncode != 0:
            if "Invalid job id" in p.stderr:
                return True, []  # already purged from the controller: finished
            return False, []
        return True, p.stdout.split()

    def in_queue(self, job_id: str) -> bool:
        answered, states = self.squeue(job_id)
        return answered and any(s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED",
                                      "REQUEUED", "RESIZING") for s in states)

    def write_script(self, submit: list[str]) -> Path:
        exports = []
        for k, v in sorted(os.environ.items()):
            if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIX):
                exports.append(f"export {k}={shlex.quote(v)}")
        var = self.spec.var
        subst = f"//{var}/${{task}}" if var else ""
        text = BATCH_TEMPLATE.format(
            date=now(), var_shown=var or "nothing (single job)", submit=" ".join(shlex.quote(a) for a in submit),
            cwd=shlex.quote(str(self.cwd)), exports="\n".join(exports), command=shlex.quote(self.spec.command),
            log=shlex.quote(self.log_template), subst=subst, qdir=shlex.quote(str(self.qdir)), name=self.name,
            threads=self.spec.options.get("num_threads", "1"))
        path = self.qdir / f"{self.name}.sh"
        path.write_text(text)
        path.chmod(0o755)
        return path

    def submit(self, jobs: list[int]) -> None:
        spec = array_spec(jobs)
        if self.spec.max_jobs and len(jobs) > self.spec.max_jobs:
            spec += f"%{self.spec.max_jobs}"
        args = self.conf.command + self.conf.sbatch_args(self.spec.options) + [
            "--parsable", f"--job-name={self.name}", f"--chdir={self.cwd}",
            f"--output={self.qdir}/{self.name}.slurm.%a.out", f"--array={spec}"]
        script = self.write_script(args)
        for j in jobs:  # no stale status or log may pass for this submission's result
            self.status_file(j).unlink(missing_ok=True)
            self.log(j).unlink(missing_ok=True)
        # Signals wait until the job id is known, so that Ctrl-C during submission still cancels the array.
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            try:
                p = subprocess.run(args + [str(script)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
            except OSError as e:
                raise SystemExit(f"{PROG}: cannot run {args[0]}: {e}") from None
            if p.returncode != 0:
                msg = (p.stderr or p.stdout).strip()
                raise SystemExit(f"{PROG}: submission failed (exit {p.returncode}): {' '.join(args)} {script}\n{msg}")
            self.job_id = p.stdout.strip().split(";")[0] or None
            if not self.job_id:
                raise SystemExit(f"{PROG}: {args[0]} printed no job id (got {p.stdout!r})")
            with open(self.qdir / f"{self.name}.submitted", "a") as f:
                f.write(f"{now()} job {self.job_id} array {spec} tasks {len(jobs)}\n")
            self.save_state(failed=True)  # until proven otherwise: a killed slurm.pl leaves a resumable state
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)

    def wait(self, jobs: list[int]) -> None:
        """Until every task wrote its status file, or the array left the queue (some tasks were killed).

        Status files are looked at every second (tasks not yet seen only); squeue, which loads the
        controller, is asked at growing intervals of up to SPECENH_SLURM_POLL_MAX seconds."""
        max_delay = float(os.environ.get("SPECENH_SLURM_POLL_MAX", "10"))
        pending = list(jobs)
        delay, next_squeue, failures = 1.0, time.monotonic() + 1.0, 0
        while True:
            pending = [j for j in pending if self.read_status(j) is None]
            if not pending:
                return
            if time.monotonic() >= next_squeue:
                answered, states = self.squeue(self.job_id)
                if answered:
                    failures = 0
                    if not states:
                        return
                else:
                    failures += 1
                    if failures in (6, 60):
                        print(f"{PROG}: squeue does not answer for job {self.job_id}; still waiting",
                              file=sys.stderr)
                delay = min(max_delay, delay * 1.5)
                next_squeue = time.monotonic() + delay
            time.sleep(min(1.0, max(0.2, next_squeue - time.monotonic())))

    def cancel(self, signum: int, _frame=None) -> None:
        if self.interrupted:
            return
        self.interrupted = True
        if self.job_id:
            subprocess.run(["scancel", self.job_id], capture_output=True)
            print(f"{PROG}: got signal {signum}, cancelled Slurm job {self.job_id}", file=sys.stderr)
        raise KeyboardInterrupt

    # ------------------------------------------------------------ main
    def run(self) -> int:
        self.qdir.mkdir(parents=True, exist_ok=True)
        jobs = self.jobs_to_run()
        if not jobs:
            self.save_state(failed=False)
            return 0
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self.cancel)
        try:
            self.submit(jobs)
            self.wait(jobs)
        except KeyboardInterrupt:
            self.save_state(failed=True)
            return 130
        return self.report(jobs)

    def report(self, jobs: list[int]) -> int:
        def exit_code(j: int) -> int | None:  # a status file may show up late on a shared file system
            c = self.read_status(j)
            return c if c is not None else self.code_from_log(j)

        waited, limit = 0.0, float(os.environ.get("SPECENH_SLURM_STATUS_WAIT", "5"))
        while waited < limit and any(exit_code(j) is None for j in jobs):
            time.sleep(0.5)
            waited += 0.5
        n = self.spec.last - self.spec.first + 1
        bad = []
        for j in jobs:
            code = exit_code(j)
            if code == 0:
                continue
            bad.append(j)
            why = (f"failed (code {code})" if code is not None else
                   f"ended without an exit status (cancelled, time or memory limit, node failure? "
                   f"see {self.qdir}/{self.name}.slurm.{j}.out)")
            print(f"{PROG}: task {j} of Slurm job {self.job_id} {why}, log is in {self.shown_log(j)}",
                  file=sys.stderr)
        self.save_state(failed=bool(bad))
        if bad:
            print(f"{PROG}: {len(bad)} / {n} jobs failed (tasks {array_spec(bad)}); rerun the same command "
                  f"to resubmit only those", file=sys.stderr)
            return 1
        return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 1
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SPECENH_SLURM_NESTED", "0") in ("", "0"):
        run_pl = Path(__file__).resolve().parent / "run.pl"
        print(f"{PROG}: inside Slurm job {os.environ['SLURM_JOB_ID']}: running the jobs here with run.pl "
              f"(SPECENH_SLURM_NESTED=1 submits them instead)", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, str(run_pl), *argv])
    try:
        spec = parse_args(argv)
        conf = load_config(spec.config)
        conf.sbatch_args(spec.options)  # reject options the config cannot map before anything else
    except UsageError as e:
        print(f"{PROG}: {e}\nRun '{PROG} --help' for usage.", file=sys.stderr)
        return 1
    if shutil.which(conf.command[0]) is None:
        print(f"{PROG}: '{conf.command[0]}' not found on PATH: utils/slurm.pl needs a Slurm submit host "
              f"(or run with --cmd local, i.e. utils/run.pl)", file=sys.stderr)
        return 1
    try:
        return ArrayRun(spec, conf).run()
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
