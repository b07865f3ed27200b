"""Corpus preparers (LibriSpeech layout, LJSpeech) and resumable, checksum-verified downloads."""
from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.data.download import ChecksumError, Resource, download, extract, fetch
from specenh.data.kaldi import read_kv
from specenh.data.librispeech import prepare_librispeech
from specenh.data.ljspeech import prepare_ljspeech
from specenh.data.validate import validate_data_dir


def _fake_librispeech(root: Path, subset: str = "dev-clean") -> None:
    rng = np.random.default_rng(0)
    for spk, chap in (("84", "121123"), ("174", "50561")):
        d = root / "LibriSpeech" / subset / spk / chap
        d.mkdir(parents=True)
        lines = []
        for i in range(3):
            utt = f"{spk}-{chap}-{i:04d}"
            sf.write(d / f"{utt}.flac", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
            lines.append(f"{utt} HELLO WORLD NUMBER {i}")
        (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")


def test_prepare_librispeech(tmp_path):
    _fake_librispeech(tmp_path / "corpus")
    dirs = prepare_librispeech(tmp_path / "corpus", tmp_path / "data", ["dev-clean"])
    d = tmp_path / "data" / "dev_clean"
    validate_data_dir(d, check_audio=True)
    u2s = read_kv(d / "utt2spk")
    assert u2s["84-121123-0001"] == "84-121123" and len(u2s) == 6
    assert read_kv(d / "text")["174-50561-0002"] == "HELLO WORLD NUMBER 2"
    assert abs(float(read_kv(d / "utt2dur")["84-121123-0000"]) - 0.5) < 1e-3
    assert len(dirs["dev-clean"]) == 6
    with pytest.raises(ValueError, match="test-other"):
        prepare_librispeech(tmp_path / "corpus", tmp_path / "data", ["test-other"])


def test_prepare_ljspeech_real(ljspeech_root, tmp_path):
    t0 = time.time()
    prepare_ljspeech(ljspeech_root, tmp_path / "data", num_dev=10, num_test=20)
    for s, n in (("train", 156), ("dev", 10), ("test", 20)):
        validate_data_dir(tmp_path / "data" / s)
        assert len(read_kv(tmp_path / "data" / s / "wav.scp")) == n
    text = read_kv(tmp_path / "data" / "train" / "text")
    assert text["LJ001-0001"].startswith("Printing, in the only sense")
    assert time.time() - t0 < 30


# ---------------------------------------------------------------- downloads over loopback


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves bytes from the server's ``files`` dict with Range support; can cut a response short."""

    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        name = self.path.rsplit("/", 1)[1]
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.server.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.requests.append((name, start))
        cut = self.server.cut_after.pop(name, None)
        if cut is not None:  # simulate a dropped connection
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.cut_after, srv.requests, srv.ranges = {}, {}, [], True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        payload = np.random.default_rng(1).bytes(300_000)
        info = tarfile.TarInfo("LibriSpeech/README.TXT")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_download_resumes_and_verifies(server, tmp_path):
    data = _archive()
    md5 = hashlib.md5(data).hexdigest()
    server.files["test-clean.tar.gz"] = data
    server.cut_after["test-clean.tar.gz"] = 100_000  # first response dies after 100 kB
    url = f"http://127.0.0.1:{server.server_port}/res/test-clean.tar.gz"
    out = download(url, tmp_path / "test-clean.tar.gz", md5)
    assert out.read_bytes() == data
    assert [s for _, s in server.requests] == [0, 100_000]  # the second request resumed with Range
    assert not (tmp_path / "test-clean.tar.gz.part").exists()
    # idempotent: a second call downloads nothing
    download(url, tmp_path / "test-clean.tar.gz", md5)
    assert len(server.requests) == 2
    extract(out, tmp_path / "x")
    assert (tmp_path / "x" / "LibriSpeech" / "README.TXT").stat().st_size == 300_000


def test_download_rejects_corrupt(server, tmp_path):
    data = _archive()
    server.files["dev-clean.tar.gz"] = data[:-10] + b"0123456789"  # corrupted tail
    url = f"http://127.0.0.1:{server.server_port}/dev-clean.tar.gz"
    with pytest.raises(ChecksumError, match="MD5"):
        download(url, tmp_path / "dev-clean.tar.gz", hashlib.md5(data).hexdigest())
    assert not (tmp_path / "dev-clean.tar.gz").exists() and not (tmp_path / "dev-clean.tar.gz.part").exists()


def test_fetch_with_mirror(server, tmp_path):
    data = _archive()
    server.files["dev-clean.tar.gz"] = data
    res = Resource("dev-clean", "https://example.invalid/resources/12/dev-clean.tar.gz", hashlib.md5(data).hexdigest())
    fetch(res, tmp_path / "dl", base_url=f"http://127.0.0.1:{server.server_port}/mirror")
    assert (tmp_path / "dl" / "LibriSpeech" / "README.TXT").is_file()
