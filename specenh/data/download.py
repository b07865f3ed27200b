"""Resumable, checksum-verified downloads and archive extraction for corpus recipes (stage 0).

``download(url, dest, md5=...)`` writes ``dest.part`` and resumes it with an HTTP ``Range`` request
after an interruption; when complete, the MD5 is checked and only then is the file renamed to
``dest``. A mismatch deletes the partial file and raises :class:`ChecksumError`. ``extract`` unpacks
a tar archive (refusing members that escape the target folder) and leaves a ``.done`` marker.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

OPENSLR = "https://www.openslr.org/resources"


@dataclass(frozen=True)
class Resource:
    name: str
    url: str
    md5: str | None  # published checksum (None: the publisher gives none; downloads are unverified)


# published MD5 checksums (OpenSLR SLR12 and SLR17)
LIBRISPEECH = {
    s: Resource(s, f"{OPENSLR}/12/{s}.tar.gz", md5) for s, md5 in {
        "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
        "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
        "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
        "test-other": "fb5a50374b501bb3bac4815ee91d3135",
        "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
        "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
        "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
    }.items()
}
NOISE = {
    "musan": Resource("musan", f"{OPENSLR}/17/musan.tar.gz", "0c472d4fc0c5141eca47ad1ffeb2a7df"),
}
LJSPEECH = Resource("LJSpeech-1.1", "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2", None)


class ChecksumError(RuntimeError):
    """A downloaded file does not have the published checksum."""


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | Path, md5: str | None, *, timeout: float = 60.0, retries: int = 3,
             chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify ``md5``, rename. Idempotent."""
    dest = Path(dest)
    if dest.is_file():
        if md5 is None or md5sum(dest) == md5:
            log.info("%s already downloaded", dest)
            return dest
        raise ChecksumError(f"{dest} exists but its MD5 is not {md5}: delete it and rerun")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = getattr(resp, "status", 200)
                if have and status != 206:  # server ignored the range: start over
                    log.warning("%s: server does not resume (HTTP %s); restarting", url, status)
                    have = 0
                total = resp.headers.get("Content-Length")
                total = int(total) + have if total is not None else None
                mode = "ab" if have else "wb"
                with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                 desc=dest.name, disable=None) as bar:
                    while True:
                        block = resp.read(chunk)
                        if not block:
                            break
                        f.write(block)
                        bar.update(len(block))
            if total is not None and part.stat().st_size < total:
                raise OSError(f"connection closed at {part.stat().st_size} of {total} bytes")
            break
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # range not satisfiable: the part is already complete
                break
            if attempt == retries:
                raise
            log.warning("download of %s failed (%s); retry %d/%d", url, e, attempt, retries)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            if attempt == retries:
                raise RuntimeError(f"download of {url} failed after {retries} attempts: {e} "
                                   f"(partial file kept: {part}; rerun to resume)") from None
            log.warning("download of %s interrupted (%s); resuming (%d/%d)", url, e, attempt, retries)
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise ChecksumError(f"{url}: MD5 {got} != published {md5}; the corrupt file was removed, rerun")
    else:
        log.warning("%s: no published checksum; the download is not verified", url)
    os.replace(part, dest)
    return dest


def extract(archive: str | Path, out_dir: str | Path) -> Path:
    """Unpack a tar archive into ``out_dir`` once (``out_dir/.<archive>.done`` marks completion)."""
    archive, out_dir = Path(archive), Path(out_dir)
    done = out_dir / f".{archive.name}.done"
    if done.is_file():
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            target = (out_dir / m.name).resolve()
            if root != target and root not in target.parents:
                raise RuntimeError(f"{archive}: member {m.name!r} would be written outside {out_dir}")
            if m.issym() or m.islnk():
                raise RuntimeError(f"{archive}: links are not expected in a corpus archive ({m.name!r})")
        tf.extractall(out_dir)
    done.touch()
    return out_dir


def fetch(resource: Resource, download_dir: str | Path, *, base_url: str | None = None) -> Path:
    """Download and extract a resource; ``base_url`` replaces the URL's folder (mirrors, tests)."""
    fname = resource.url.rsplit("/", 1)[1]
    url = f"{base_url.rstrip('/')}/{fname}" if base_url else resource.url
    archive = download(url, Path(download_dir) / fname, resource.md5)
    return extract(archive, download_dir)


def remove_archive(path: str | Path) -> None:
    p = Path(path)
    if p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)
