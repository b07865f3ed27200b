"""ONNX export of the trained front-ends (``specenh export``), with the inference options baked in.

The log-mel front-ends (stylegan and its variants, bwe, inpaint) export as a graph from ``features``
(float32 [B, D, T], unnormalised log-mel) and ``lengths`` (int64 [B], valid frames) to ``enhanced``
(float32 [B, D, T], zero past ``lengths``): what :meth:`FrontEnd.enhance` returns for one fixed set of
inference options. An oracle-mask inpainter takes a third input, ``hole_mask`` (bool [B, D, T],
True = hole). The waveform front-end ``mask`` exports from ``waveform`` (float32 [B, N]) and ``lengths``
(samples) to ``enhanced`` [B, N], through an export-friendly rewrite of its STFT, LSTM and inverse STFT
(:mod:`specenh.frontends.mask_export`). Batch and time are dynamic axes.

What is fixed at export time (:class:`ExportModule`):

- observation adding (``alpha``, ``alpha_domain``) as one weight; a grid of weights is chosen per
  utterance by the frozen ASR and cannot be exported;
- the StyleGAN enhancer's inference latent ``z`` (drawn from ``inference_seed``), a constant of the
  graph, with its truncation ``psi``; per-pixel noise must be ``zero`` (the deterministic default);
- a bandwidth extender's fixed cut-off, if its config names one (else the cut-off is estimated in
  the graph, per utterance).

The exporter is ``torch.onnx.export(..., dynamo=True)``; it needs the optional packages ``onnx`` and
``onnxscript``, and the check against PyTorch needs ``onnxruntime``: ``pip install -e .[export]``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from specenh.frontends.base import FrontEnd, mask_padding, observation_add

log = logging.getLogger(__name__)

LOG_FLOOR = math.log(2.0**-24)  # the value of an empty log-mel band

#: ONNX opset of the exported graphs
OPSET = 18
#: input and output names of the exported graph
INPUTS = ("features", "lengths")
WAVE_INPUTS = ("waveform", "lengths")  # the mask front-end: waveforms [B, N] and their lengths in samples
MASK_INPUT = "hole_mask"
OUTPUT = "enhanced"


class ExportModule(nn.Module):
    """A front-end with its inference options fixed, as a graph of tensors only.

    ``forward(features [B, D, T], lengths [B] int64[, hole_mask [B, D, T] bool]) -> enhanced [B, D, T]``,
    equal to ``fe.enhance(features, lengths[, mask=hole_mask])[0]``; for ``mask`` (waveforms)
    ``forward(wave [B, N], lengths [B]) -> [B, N]``, equal to ``fe.enhance`` up to float rounding.
    Raises ValueError, saying why, for a front-end or an option that cannot be exported.
    """

    def __init__(self, fe: FrontEnd):
        super().__init__()
        self.wave_graph = None
        if fe.domain == "wave":
            from specenh.frontends.mask import MaskEnhancer
            from specenh.frontends.mask_export import MaskGraph

            if not isinstance(fe, MaskEnhancer):
                raise ValueError(f"front-end {fe.name!r} works on waveforms: of those only 'mask' exports to ONNX")
            self.wave_graph = MaskGraph(fe)
        if fe.needs_clean or not fe.standalone:
            raise ValueError(f"front-end {fe.name!r} cannot be exported (it needs the clean input or the "
                             f"frozen ASR at inference)")
        alpha = fe.obs_alpha
        if alpha is not None and len(alpha) != 1:
            raise ValueError(f"front-end {fe.name!r}: observation adding with a grid of weights {alpha} chooses "
                             f"per utterance with the frozen ASR; export one weight (--frontend-opts alpha=0.7)")
        self.fe = fe.eval()
        self.eval()
        self.alpha = None if alpha is None else float(alpha[0])
        self.alpha_domain = fe.obs_domain
        self.takes_mask = bool(getattr(fe, "needs_mask", False))
        latent = None
        if hasattr(fe, "inference_latent"):  # stylegan: the fixed latent is a constant of the graph
            if getattr(fe, "noise_mode", "zero") != "zero":
                raise ValueError(f"front-end {fe.name!r}: noise_mode={fe.noise_mode!r} draws noise at inference; "
                                 f"export needs noise_mode=zero (deterministic)")
            latent = fe.inference_latent("cpu")
        self.register_buffer("latent", latent, persistent=False)

    @property
    def domain(self) -> str:
        return self.fe.domain

    @property
    def input_names(self) -> list[str]:
        if self.wave_graph is not None:
            return list(WAVE_INPUTS)
        return [*INPUTS, MASK_INPUT] if self.takes_mask else list(INPUTS)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor,
                hole_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.wave_graph is not None:
            return self.wave_graph(features, lengths)
        kw: dict[str, Any] = {}
        if self.latent is not None:
            kw["z"] = self.latent
        if self.takes_mask:
            kw["mask"] = hole_mask
        y, _ = self.fe(features, lengths, **kw)
        if self.alpha is not None:
            y = observation_add(features, y, self.alpha, self.alpha_domain)
        return mask_padding(y, lengths)


    def reference(self, *inputs: torch.Tensor) -> torch.Tensor:
        """What the graph must reproduce: the front-end's own :meth:`FrontEnd.enhance` on the same inputs
        (for ``mask`` the enhancer itself, not the export rewrite)."""
        kw = {"mask": inputs[2]} if self.takes_mask else {}
        return self.fe.enhance(inputs[0], inputs[1], **kw)[0]


def example_inputs(module: ExportModule, n_bands: int, frames: tuple[int, ...] = (61, 40),
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A batch of log-mel-like inputs (float32 [B, D, T]; the first item band-limited: its top third at
    the log floor), lengths (int64 [B]) and, when the module takes one, a random hole mask:
    B = len(frames), T = max(frames), zero past each length."""
    g = torch.Generator().manual_seed(seed)
    if module.domain == "wave":  # waveforms of about as many 10 ms frames
        lengths = torch.tensor([160 * f + 37 for f in frames], dtype=torch.int64)
        x = 0.1 * torch.randn(len(frames), int(lengths.max()), generator=g)
        return mask_padding(x, lengths), lengths
    t = max(frames)
    lengths = torch.tensor(frames, dtype=torch.int64)
    x = -8.0 + 3.0 * torch.randn(len(frames), n_bands, t, generator=g)
    x[0, 2 * n_bands // 3 :] = LOG_FLOOR  # a band-limited item (a bandwidth extender's cut-off)
    x = mask_padding(x, lengths)
    if not module.takes_mask:
        return x, lengths
    return x, lengths, torch.rand(len(frames), n_bands, t, generator=g) > 0.7


def n_bands_of(fe: FrontEnd) -> int:
    """Feature dimension D a log-mel front-end expects."""
    for k in ("n_bands", "n_mels"):
        if k in fe.config:
            return int(fe.config[k])
    return 80


@dataclass
class ExportResult:
    """What :func:`export` wrote: the file, the export's wall time (trace, convert, save) and, when
    checked, the largest |onnxruntime - PyTorch| on a batch of ``check_frames`` frames (waveforms: as
    many 10 ms frames)."""

    path: Path
    seconds: float
    max_abs_diff: float | None = None
    check_frames: list[int] = field(default_factory=list)


def require_packages(*, runtime: bool = True) -> None:
    """Raise a RuntimeError naming the extra to install when onnx / onnxscript (/ onnxruntime) are missing."""
    import importlib.util

    names = ["onnx", "onnxscript"] + (["onnxruntime"] if runtime else [])
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise RuntimeError(f"ONNX export needs {', '.join(missing)}: pip install -e .[export]")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's deprecation and tracing warnings and its notes about optional packages
    (torchvision) for the duration of one export; errors still raise."""
    names = ("torch.onnx", "torch._dynamo", "torch.export", "torch.fx.experimental.symbolic_shapes", "onnxscript",
             "onnx_ir")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for n, lvl in levels.items():
            logging.getLogger(n).setLevel(lvl)


def _check_dynamic(model: Any, names: list[str]) -> None:
    """Raise when the exporter fixed the batch or time axis of the first input (a graph that would
    reject other lengths). Seen with a second LSTM export in one process (torch 2.13): export in a
    fresh process (``specenh export`` does)."""
    inp = {i.name: i for i in model.graph.input}[names[0]]
    dims = inp.type.tensor_type.shape.dim
    fixed = [k for k in (0, len(dims) - 1) if not dims[k].dim_param]
    if fixed:
        shape = [d.dim_param or d.dim_value for d in dims]
        raise RuntimeError(f"the exporter fixed axis {fixed} of input {names[0]!r} (shape {shape}); "
                           f"export this front-end in a fresh process")


def export(fe: FrontEnd, out: str | Path, *, check: bool = True, opset: int = OPSET) -> ExportResult:
    """Export ``fe`` (inference options as configured) to ``out`` (.onnx) with dynamic batch and time
    axes; with ``check``, run the file in onnxruntime on a batch of other lengths than the example
    the exporter traced, and record the largest absolute difference from PyTorch."""
    check_writable(out)
    module = ExportModule(fe)
    d = n_bands_of(fe)
    args = example_inputs(module, d)
    batch = torch.export.Dim("batch", min=1)
    if module.domain == "wave":
        shapes: dict[str, Any] = {"features": {0: batch, 1: torch.export.Dim("samples", min=1)}, "lengths": {0: batch}}
    else:
        shapes = {"features": {0: batch, 2: torch.export.Dim("frames", min=1)}, "lengths": {0: batch}}
    if module.takes_mask:
        shapes["hole_mask"] = shapes["features"]
    from specenh.utils.io import atomic_path

    out = Path(out)
    t0 = time.perf_counter()
    with torch.no_grad(), _quiet_exporter():
        prog = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=shapes, input_names=module.input_names,
                                 output_names=[OUTPUT], opset_version=opset, external_data=False, verbose=False)
    _check_dynamic(prog.model_proto, module.input_names)
    with atomic_path(out) as tmp:  # a failed or interrupted export leaves no half-written file
        prog.save(str(tmp))
    sec = time.perf_counter() - t0
    res = ExportResult(out, sec)
    log.info("exported %s to %s in %.1f s", fe.name, out, sec)
    if check:
        frames = (23, 70, 5)
        res.max_abs_diff = max_abs_diff(module, out, example_inputs(module, d, frames, seed=1))
        res.check_frames = list(frames)
    return res


def check_writable(out: str | Path) -> None:
    """Fail at once, naming ``out``, when it cannot be written (before a minute of exporting)."""
    import os

    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise IsADirectoryError(f"--out {out}: is a folder; name the .onnx file to write")
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FileNotFoundError(f"--out {out}: folder {parent} cannot be created ({e.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise PermissionError(f"--out {out}: not writable (permission denied on {out if out.exists() else parent})")


def run_onnx(session: Any, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """Run an onnxruntime session on (features, lengths[, hole_mask]) -> enhanced [B, D, T]."""
    names = [i.name for i in session.get_inputs()]
    feed = {n: t.numpy() for n, t in zip(names, inputs)}
    return session.run([OUTPUT], feed)[0]


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads (one inter-op thread)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def max_abs_diff(module: ExportModule, path: str | Path, inputs: tuple[torch.Tensor, ...]) -> float:
    """Largest |onnxruntime - PyTorch| of the exported ``path`` on ``inputs``."""
    ref = module.reference(*inputs).numpy()
    got = run_onnx(session(path), inputs)
    if got.shape != ref.shape:
        raise RuntimeError(f"onnxruntime output {got.shape} vs PyTorch {ref.shape}")
    return float(np.abs(got - ref).max())


def _real_inputs(module: ExportModule, scp: str | Path, max_utts: int) -> tuple[list[str], list[np.ndarray], Any]:
    """(utterances, inputs, hole masks or None) of the first ``max_utts`` entries of ``scp``: a stage-3
    ``feats.scp`` ([T, D] each) for a log-mel front-end, a data dir's ``wav.scp`` ([N, 1] each) for ``mask``."""
    from specenh.data.kaldi import read_kv

    table = read_kv(scp)
    utts = list(table)[: max(1, int(max_utts))]
    if not utts:
        raise ValueError(f"{scp}: no utterances")
    if module.domain == "wave":
        from specenh.data.audio import load_audio

        return utts, [load_audio(table[u], 16000, utt=u)[0][:, None] for u in utts], None
    from specenh.features.io import load_feat, read_feats_scp

    feats = read_feats_scp(scp)
    mats = [load_feat(feats, u) for u in utts]
    masks = None
    if module.takes_mask:
        from specenh.frontends.inpaint import load_mel_masks

        masks = load_mel_masks(Path(scp).parent, utts, {u: m.shape[0] for u, m in zip(utts, mats)})
    return utts, mats, masks


def check_on_data(fe: FrontEnd, path: str | Path, scp: str | Path, max_utts: int = 4) -> dict[str, Any]:
    """onnxruntime vs PyTorch on real data: the first ``max_utts`` utterances of ``scp`` (a stage-3
    ``feats.scp`` for a log-mel front-end, a data dir's ``wav.scp`` for ``mask``; paths relative to the
    working directory as in a recipe), each alone and all together as one padded batch. An oracle-mask
    inpainter gets the set's saved hole masks. Returns ``{"max_abs_diff", "utts", "lengths"}``
    (lengths in frames or samples)."""
    from specenh.features.io import pad_batch

    module = ExportModule(fe)
    utts, mats, masks = _real_inputs(module, scp, max_utts)
    sess = session(path)
    groups = [[i] for i in range(len(utts))] + ([list(range(len(utts)))] if len(utts) > 1 else [])
    worst = 0.0
    for idx in groups:
        x, lengths = pad_batch([mats[i] for i in idx])  # [B, D, T] (waveforms: [B, 1, N])
        inputs: tuple[torch.Tensor, ...] = (x[:, 0] if module.domain == "wave" else x, lengths)
        if masks is not None:
            from specenh.frontends.inpaint import pad_mel_masks

            inputs += (pad_mel_masks([masks[i] for i in idx], x.shape[-1]),)
        ref = module.reference(*inputs).numpy()
        worst = max(worst, float(np.abs(run_onnx(sess, inputs) - ref).max()))
    return {"max_abs_diff": worst, "utts": utts, "lengths": [int(m.shape[0]) for m in mats]}
