"""``--runtime onnx``: a trained front-end's network run by onnxruntime in stage 5, stage 7 and enhance-audio.

:func:`with_runtime` takes a resolved front-end and returns the one to run: unchanged for ``pytorch``; for
``onnx``, every exportable trained front-end (itself, or each member of ``auto``) is replaced by an
:class:`OnnxFrontEnd` whose network is the exported graph, exported on demand and cached. What the graph
computes is the front-end's raw output (:class:`specenh.frontends.export.ExportModule` with no observation
adding); observation adding, and the choice among a grid of weights, stays in PyTorch, so stage 5's
candidates and choice rule are those of the PyTorch run, on outputs equal to PyTorch's within the export
tolerance (``tests/test_runtime.py``). Front-ends without a network (identity, the classical ones, oracle)
run in PyTorch whatever the runtime.

Cache: ``<dir>/onnx/<name>.<fingerprint>.onnx`` next to the checkpoint (``model.pt``'s folder), the
fingerprint covering the weights, the config, the inference options baked into the graph (the StyleGAN
latent and its truncation), the opset and the torch version; written atomically under a file lock, so
parallel jobs export once and never read a half-written file.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any, Iterator

import torch

from specenh.frontends.base import FrontEnd

log = logging.getLogger(__name__)

RUNTIMES = ("pytorch", "onnx")


class OnnxFrontEnd(FrontEnd):
    """``fe`` with its network run by onnxruntime: ``forward(x, lengths, **extra) -> (y, lengths)`` in the
    front-end's domain (log-mel ``[B, D, T]`` or waveforms ``[B, N]``), the raw output before observation
    adding; ``candidates`` / ``enhance`` (the base class) then add observation adding as in PyTorch."""

    trainable = False

    def __init__(self, fe: FrontEnd, onnx_path: str | Path, threads: int = 1):
        super().__init__()
        from specenh.frontends.export import session

        self.inner = fe
        self.name = fe.name  # type: ignore[misc]  (the instance shows the wrapped front-end's name)
        self.domain = fe.domain  # type: ignore[misc]
        self.passthrough = fe.passthrough  # type: ignore[misc]
        self.cpu_chunk_frames = fe.cpu_chunk_frames  # type: ignore[misc]  (measured for PyTorch; see bench --onnx)
        self.obs_alpha = fe.obs_alpha
        self.obs_domain = fe.obs_domain
        self.takes_mask = bool(getattr(fe, "needs_mask", False))
        self.onnx_path = Path(onnx_path)
        self.session = session(self.onnx_path, threads)

    def extra_inputs(self, batch):  # the wrapped front-end's declared inputs (e.g. hole masks)
        return self.inner.extra_inputs(batch)

    def inference_defaults(self) -> dict[str, Any]:
        return self.inner.inference_defaults()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from specenh.frontends.export import run_onnx

        inputs = [x.detach().float().cpu().contiguous(), lengths.detach().long().cpu()]
        if self.takes_mask:
            inputs.append(kw["mask"].detach().bool().cpu())
        y = torch.from_numpy(run_onnx(self.session, tuple(inputs))).to(x.device)
        return y, lengths


def with_runtime(fe: FrontEnd, runtime: str = "pytorch", *, spec: str | Path | None = None,
                 threads: int = 1, cache_dir: str | Path | None = None) -> FrontEnd:
    """The front-end to run under ``runtime``. ``spec``: what ``fe`` was resolved from (a checkpoint or a
    YAML pointing to one): the cache goes next to that checkpoint, else to ``cache_dir`` (default
    ``~/.cache/specenh/onnx``)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "pytorch":
        return fe
    members = fe.members()
    if len(members) > 1 or members[0][1] is not fe:  # auto: each member under the runtime
        from specenh.frontends.spec import member_label

        specs = {member_label(str(m)): str(m) for m in fe.config.get("members", [])}
        for label, m in members:
            new = with_runtime(m, runtime, spec=specs.get(label), threads=threads, cache_dir=cache_dir)
            if new is not m:
                fe.replace_member(label, new)  # type: ignore[attr-defined]
        return fe
    if not fe.trainable:
        log.info("--runtime onnx: %s has no network; it runs in PyTorch", fe.name)
        return fe
    return OnnxFrontEnd(fe, export_cached(fe, _cache_dir(spec, cache_dir)), threads)


def _cache_dir(spec: str | Path | None, cache_dir: str | Path | None) -> Path:
    if spec is not None:
        p = Path(str(spec))
        if p.suffix in (".yaml", ".yml"):
            from specenh.utils.done import referenced_models

            refs = referenced_models(p)
            p = Path(refs[0]) if refs else p
        if p.is_file() and p.suffix in (".pt", ".ckpt", ".pth"):
            return p.parent / "onnx"
    return Path(cache_dir) if cache_dir else Path.home() / ".cache" / "specenh" / "onnx"


def graph_fingerprint(fe: FrontEnd) -> str:
    """What the exported graph depends on: weights, config, the inference options it bakes in, opset, torch."""
    from specenh.frontends.export import OPSET

    h = hashlib.sha256()
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in fe.state_dict().items()}, buf)
    h.update(buf.getvalue())
    opts = {k: v for k, v in fe.inference_defaults().items() if k not in ("alpha", "alpha_domain")}
    h.update(json.dumps({"name": fe.name, "config": fe.config, "inference": opts, "opset": OPSET,
                         "torch": torch.__version__}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def export_cached(fe: FrontEnd, cache_dir: str | Path) -> Path:
    """The ONNX graph of ``fe``'s raw output (no observation adding), exported once into ``cache_dir``."""
    from specenh.frontends.export import export

    raw = copy.deepcopy(fe).eval()
    raw.set_observation_adding(None)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"{fe.name}.{graph_fingerprint(raw)}.onnx"
    with _exclusive(cache_dir / f".{out.name}.lock"):
        if not out.is_file():
            res = export(raw, out, check=True)
            log.info("--runtime onnx: exported %s to %s in %.0f s (max |ONNX - PyTorch| %.2g)", fe.name, out,
                     res.seconds, res.max_abs_diff if res.max_abs_diff is not None else float("nan"))
        else:
            log.info("--runtime onnx: %s from %s", fe.name, out)
    return out


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (parallel jobs wait, then find the graph written)."""
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


__all__ = ["RUNTIMES", "OnnxFrontEnd", "with_runtime", "export_cached", "graph_fingerprint"]
