"""One "done" convention for every step, shell or Python: a marker file holding the step's fingerprint.

A step (a shell step of a recipe, a job of ``degrade`` / ``extract-feats`` / ``decode`` / ``resynth``)
is skipped only when its marker exists **and** holds the fingerprint of its current config and inputs.
A marker with another fingerprint means the step ran with other settings: it is redone, with a log line
saying so (never silently reused). A fingerprint is the SHA-256 of a canonical JSON of

- the step's config (any JSON-able mapping: a feature config, a condition, the command line, ...), and
- its input files: path, size and modification time (``inputs``), or their bytes (``contents``, for small
  config files whose edits must count even when the file keeps its size and time).

The marker is written last (atomically), so a killed step is never marked done.

Command line (for the shell driver, no torch): ``python -m specenh.utils.done fingerprint -- CMD ARGS...``
prints the fingerprint of a command line, reading the YAML/JSON files named in it by content.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".conf")
MODEL_SUFFIXES = (".pt", ".nemo", ".ckpt", ".pth")


def _file_id(p: Path, by_content: bool) -> Any:
    if not p.exists():
        return [str(p), None]
    if by_content and p.is_file():
        return [str(p), hashlib.sha256(p.read_bytes()).hexdigest()]
    st = p.stat()
    return [str(p), st.st_size, st.st_mtime_ns]


def fingerprint(config: Any = None, *, inputs: Iterable[str | Path] = (), contents: Iterable[str | Path] = ()) -> str:
    """SHA-256 (hex) of ``config`` and the identities of ``inputs`` (size, mtime) and ``contents`` (bytes)."""
    doc = {"config": config, "inputs": [_file_id(Path(p), False) for p in inputs],
           "contents": [_file_id(Path(p), True) for p in contents]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def referenced_models(config: str | Path) -> list[str]:
    """The model files a front-end YAML points to (an inference variant's ``checkpoint:``, ``auto``'s
    ``members:``) that exist, relative to the working directory as stage 5 reads them; [] for other files."""
    p = Path(config)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        return []
    import yaml

    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return []
    if not isinstance(cfg, dict):
        return []
    refs = [cfg.get("checkpoint")] + list(cfg.get("members") or [])
    return [str(r) for r in refs if isinstance(r, str) and r.endswith(MODEL_SUFFIXES) and os.path.isfile(r)]


def base_files(config: str | Path) -> list[str]:
    """The files a YAML config's ``base:`` chain names (each relative to the file naming it), nearest first;
    [] for a file without ``base:``. A cycle or an unreadable file ends the chain (the loader reports it)."""
    import yaml

    out: list[str] = []
    p = Path(config)
    seen = {p.resolve()}
    while p.suffix in (".yaml", ".yml") and p.is_file():
        try:
            cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            break
        base = cfg.get("base") if isinstance(cfg, dict) else None
        if not isinstance(base, str):
            break
        p = p.parent / base
        if p.resolve() in seen:
            break
        seen.add(p.resolve())
        out.append(str(p))
    return out


def command_fingerprint(argv: list[str], inputs: Iterable[str | Path] = ()) -> str:
    """The fingerprint of a command line: its words, the bytes of every config file it names (and of the files
    their ``base:`` chains name), the size and time of ``inputs`` (files the command reads that it does not
    name as such, e.g. a data dir's files for its validation), and the size
    and time of every model file it names or that a front-end YAML it names points to (a retrained model
    redoes the steps that used it, also through an inference variant or an ``auto`` member)."""
    files = [a for a in argv if a.endswith(CONFIG_SUFFIXES) and os.path.isfile(a)]
    files += [b for f in list(files) for b in base_files(f) if os.path.isfile(b)]  # a changed base redoes the step
    models = [a for a in argv if a.endswith(MODEL_SUFFIXES) and os.path.isfile(a)]
    models += [m for f in files for m in referenced_models(f)]
    return fingerprint({"argv": list(argv)}, contents=files, inputs=models + [str(p) for p in inputs])


class Marker:
    """``path``: the marker file (e.g. ``<out_dir>/.done/extract.3``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    def is_current(self, fp: str, what: str = "") -> bool:
        """True when the step is done with fingerprint ``fp``; a marker of other settings is logged and
        removed (the step is redone)."""
        old = self.read()
        if old is None:
            return False
        if old.split()[0:1] == [fp]:
            return True
        log.warning("%s: done before with other settings or inputs (fingerprint %s, now %s); redoing",
                    what or self.path, (old.split() or ["-"])[0][:12], fp[:12])
        self.clear()
        return False

    def exists(self) -> bool:
        return self.path.is_file()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def mark(self, fp: str, info: Mapping[str, Any] | None = None) -> None:
        """Write the marker (atomically): the fingerprint, then optional JSON info on the same line."""
        from specenh.utils.io import atomic_path

        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = fp + (" " + json.dumps(dict(info), sort_keys=True, default=str) if info else "") + "\n"
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "fingerprint" or "--" not in args:
        print("usage: python -m specenh.utils.done fingerprint [--inputs FILE...] -- CMD ARGS...", file=sys.stderr)
        return 2
    sep = args.index("--")
    opts = args[1:sep]
    if opts and opts[0] != "--inputs":
        print(f"unknown option {opts[0]!r}; usage: ... fingerprint [--inputs FILE...] -- CMD ARGS...", file=sys.stderr)
        return 2
    print(command_fingerprint(args[sep + 1:], inputs=opts[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
