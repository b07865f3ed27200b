"""Atomic file writes and job splitting helpers (so a killed job never leaves a half file)."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

T = TypeVar("T")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it to ``path`` on success only.

    The temporary file is removed on any error; an OSError without a file name (a full disk) is
    re-raised naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        except OSError as e:
            if e.filename is not None or e.errno is None or str(path) in str(e):
                raise
            # a write error (ENOSPC, EIO...) names no file: name the one being written
            raise OSError(e.errno, f"cannot write {path}: {e.strerror or os.strerror(e.errno)}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def split_for_job(items: Sequence[T], nj: int, job: int) -> list[T]:
    """Contiguous chunk ``job`` (1-based) of ``nj`` near-equal chunks, as Kaldi's split_scp.pl."""
    if nj < 1 or not 1 <= job <= nj:
        raise ValueError(f"need 1 <= job <= nj, got job={job} nj={nj}")
    n = len(items)
    start = (n * (job - 1)) // nj
    end = (n * job) // nj
    return list(items[start:end])
