"""ONNX export of the log-mel front-ends (``specenh export``): onnxruntime equals PyTorch within 1e-4 on
inputs of other batch sizes and lengths than the traced example, with the inference options baked in;
the export-friendly rewrites equal what they replace; what cannot be exported says why."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from specenh.frontends import build
from specenh.frontends.bwe import LOG_FLOOR, estimate_cutoff_band
from specenh.frontends.export import ExportModule, example_inputs

TOL = 1e-4
TINY_GAN = {"name": "stylegan", "latent_dim": 16, "style_depth": 2, "capacity": 2, "fmap_max": 8}


def _randomise(fe, seed: int = 0, scale: float = 0.05):
    """Non-trivial weights (the default inits start close to the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in fe.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return fe.eval()


def _ort_vs_torch(fe, path, frames_list=((37, 90), (13,))) -> list[float]:
    """Max abs difference between onnxruntime on ``path`` and ``fe.enhance`` for batches of the given
    frame counts (each a batch size and lengths the exporter did not trace)."""
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    module = ExportModule(fe)
    diffs = []
    for seed, frames in enumerate(frames_list):
        inputs = example_inputs(module, fe.config.get("n_bands", fe.config.get("n_mels", 80)), frames, seed=seed + 3)
        kw = {"mask": inputs[2]} if len(inputs) > 2 else {}
        ref, _ = fe.enhance(inputs[0], inputs[1], **kw)
        got = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
        assert got.shape == tuple(ref.shape)
        assert not np.allclose(got, inputs[0].numpy(), atol=1e-3)  # the graph does something
        diffs.append(float(np.abs(got - ref.numpy()).max()))
    return diffs


def _feats_scp(tmp_path, frames: list[int]):
    """A stage-3-like feats.scp of log-mel-like features [T, 80] (absolute ark paths)."""
    import kaldiio

    g = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'feats.ark'},{tmp_path / 'feats.scp'}") as w:
        for i, t in enumerate(frames):
            w(f"utt{i}", (-8 + 3 * g.standard_normal((t, 80))).astype(np.float32))
    return tmp_path / "feats.scp"


@pytest.fixture(scope="module")
def _onnx():
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name, reason=f"{name} not installed (pip install -e .[export])")


def test_cli_exports_stylegan_with_options_baked_in(_onnx, tmp_path):
    """The reference enhancer as the mini recipe configures it (residual, gated, relative-level condition
    encoder; two blocks to keep the export short), truncation psi and observation adding fixed at export."""
    from specenh.cli import main

    torch.manual_seed(0)
    cfg = {**TINY_GAN, "n_blocks": 2, "residual": True, "gate": True, "cond_channels": 3, "cond_layers": 1,
           "cond_relative": True}
    fe = _randomise(build(cfg))
    fe.save(tmp_path / "model.pt")
    out = tmp_path / "fe.onnx"
    scp = _feats_scp(tmp_path, [50, 17])
    assert main(["export", "--frontend", str(tmp_path / "model.pt"), "--out", str(out),
                 "--frontend-opts", "psi=0.5", "alpha=0.7", "--check-scp", str(scp)]) == 0
    fe.configure_inference(psi=0.5, alpha=0.7)
    assert max(_ort_vs_torch(fe, out)) <= TOL
    fe.configure_inference(alpha=1.0)  # the options are in the graph: other options give other outputs
    x, lens = example_inputs(ExportModule(fe), 80, (20,), seed=9)
    import onnxruntime as ort

    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"features": x.numpy(),
                                                                                         "lengths": lens.numpy()})[0]
    assert np.abs(got - fe.enhance(x, lens)[0].numpy()).max() > 1e-3


def test_export_matches_pytorch_inpaint(_onnx, tmp_path):
    from specenh.frontends.export import export

    torch.manual_seed(0)
    fe = _randomise(build({"name": "inpaint", "channels": [8, 16]}))  # blind
    res = export(fe, tmp_path / "fe.onnx")  # its own check: other lengths than the traced example
    assert res.max_abs_diff is not None and res.max_abs_diff <= TOL
    assert max(_ort_vs_torch(fe, res.path)) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("cfg,opts", [
    ({**TINY_GAN, "residual": True, "gate": True, "cond_channels": 3, "cond_relative": True, "refine_blocks": 1},
     {"psi": 0.5}),                                                         # five blocks and a refinement block
    ({"name": "inpaint", "channels": [8, 16, 16]}, {}),
    ({"name": "inpaint", "channels": [8, 16], "oracle_mask": True}, {}),
    ({"name": "bwe", "hidden": 32, "dilations": [1], "attn_layers": 1, "attn_heads": 2}, {"alpha": 0.5}),
    ({"name": "bwe", "hidden": 32, "dilations": [1, 2], "cutoff_hz": 2000}, {}),
    ({**TINY_GAN, "residual": True}, {"alpha": 0.5, "alpha_domain": "power"}),
], ids=["stylegan_refine_psi", "inpaint_3levels", "inpaint_oracle_mask", "bwe_attention_alpha", "bwe_fixed_cutoff",
        "stylegan_power_alpha"])
def test_export_variants(_onnx, tmp_path, cfg, opts):
    from specenh.frontends.export import export

    torch.manual_seed(0)
    fe = _randomise(build(cfg)).configure_inference(**opts)
    res = export(fe, tmp_path / "fe.onnx", check=False)
    assert max(_ort_vs_torch(fe, res.path)) <= TOL


def test_what_cannot_be_exported_says_why():
    fe = build(TINY_GAN).configure_inference(alpha=[0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="one weight"):
        ExportModule(fe)
    with pytest.raises(ValueError, match="noise_mode=zero"):
        ExportModule(build({**TINY_GAN, "noise_mode": "random"}))
    with pytest.raises(ValueError, match="only 'mask'"):
        ExportModule(build("specsub"))


MASKS = [{"name": "mask", "hidden": 24, "lstm_hidden": 16, "dilations": [1, 2], "lstm_layers": 2},
         {"name": "mask", "hidden": 24, "lstm_hidden": 16, "dilations": [1, 2], "causal": True,
          "mask_type": "complex", "mask_bound": 1.5}]


@pytest.mark.parametrize("cfg", MASKS, ids=["blstm_ratio", "causal_complex"])
def test_mask_rewrite_equals_the_enhancer(cfg):
    """The export-friendly mask graph (real STFT by convolution, LSTM without packing) computes what the
    enhancer computes, in PyTorch, for a padded batch and alone."""
    torch.manual_seed(0)
    fe = _randomise(build(cfg))
    module = ExportModule(fe)
    for frames in ((61, 40, 7), (12,)):
        x, lens = example_inputs(module, 80, frames)
        ref, _ = fe.enhance(x, lens)
        with torch.inference_mode():
            got = module(x, lens)
        assert got.shape == ref.shape and float(ref.abs().max()) > 0.1
        assert float((got - ref).abs().max()) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("cfg", MASKS, ids=["blstm_ratio", "causal_complex"])
def test_mask_export(_onnx, tmp_path, cfg):
    import subprocess
    import sys

    torch.manual_seed(0)
    fe = _randomise(build(cfg))
    fe.save(tmp_path / "model.pt")
    # a fresh process: a second LSTM export in one process fixes the time axis (torch 2.13; export() refuses it)
    subprocess.run([sys.executable, "-m", "specenh.cli", "export", "--frontend", str(tmp_path / "model.pt"),
                    "--out", str(tmp_path / "fe.onnx")], check=True)
    assert max(_ort_vs_torch(fe, tmp_path / "fe.onnx")) <= TOL
    from specenh.data.audio import write_wav
    from specenh.frontends.export import check_on_data

    g = np.random.default_rng(0)
    with open(tmp_path / "wav.scp", "w") as f:
        for i, n in enumerate((16000, 7001)):
            write_wav(tmp_path / f"u{i}.wav", (0.1 * g.standard_normal(n)).astype(np.float32), 16000)
            f.write(f"u{i} {tmp_path / f'u{i}.wav'}\n")
    chk = check_on_data(fe, tmp_path / "fe.onnx", tmp_path / "wav.scp")
    assert chk["lengths"] == [16000, 7001] and chk["max_abs_diff"] <= TOL


def _cutoff_with_cumprod(feats, lengths, floor=LOG_FLOOR, margin=1.5, fraction=0.5):
    """The former estimate (a cumulative product over the flipped empty-band flags)."""
    b, d, t = feats.shape
    lengths = lengths.clamp(min=1, max=t)
    valid = torch.arange(t)[None, :] < lengths[:, None]
    loud = feats.amax(dim=1).masked_fill(~valid, float("-inf"))
    k = (lengths.float() * fraction).ceil().long().clamp(min=1) - 1
    thr = loud.sort(dim=1, descending=True).values.gather(1, k[:, None])
    sel = (valid & (loud >= thr)).to(feats.dtype)
    prof = (feats * sel[:, None, :]).sum(-1) / sel.sum(-1, keepdim=True).clamp_min(1)
    return d - torch.cumprod((prof < floor + margin).flip(-1).long(), dim=-1).sum(-1)


def test_export_friendly_rewrites_equal_the_originals():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        x = -8 + 3 * torch.randn(4, 80, 30, generator=g)
        for i in range(4):
            x[i, int(torch.randint(0, 81, (1,), generator=g)):] = LOG_FLOOR  # a cut-off anywhere (80: none)
            x[i, int(torch.randint(0, 80, (1,), generator=g))] = LOG_FLOOR  # and an empty band inside
        lens = torch.randint(1, 31, (4,), generator=g)
        assert torch.equal(estimate_cutoff_band(x, lens), _cutoff_with_cumprod(x, lens))
    gen = build(TINY_GAN).generator
    assert [gen.padded_size(t) for t in range(1, 40)] == [-(-t // gen.factor) * gen.factor for t in range(1, 40)]


def test_bench_times_onnxruntime_next_to_pytorch_bwe(_onnx, tmp_path):
    """``specenh bench --onnx``: for an exportable front-end, an onnxruntime row after each PyTorch row, on the
    same batches and thread count, with its ratio to PyTorch in the same run; a front-end that does not
    export (specsub) keeps its PyTorch rows only. The exported bandwidth extender (cut-off estimated in
    the graph) equals PyTorch."""
    from specenh.bench.core import bench_frontends, synthetic_audio

    torch.manual_seed(0)
    fe = _randomise(build({"name": "bwe", "hidden": 16, "dilations": [1, 2]}))
    fe.save(tmp_path / "bwe.pt")
    rows = bench_frontends(synthetic_audio(3, 1.0), 1, "cpu", 2, 0.05, [str(tmp_path / "bwe.pt"), "specsub"],
                           batches=(1, 2), onnx=True, work_dir=tmp_path)
    names = [(r.name, r.batch) for r in rows]
    assert names == [("bwe (bwe.pt)", 1), ("bwe (bwe.pt) [onnxruntime]", 1), ("bwe (bwe.pt)", 2),
                     ("bwe (bwe.pt) [onnxruntime]", 2), ("specsub (default size)", 1), ("specsub (default size)", 2)]
    for pt, ort in ((rows[0], rows[1]), (rows[2], rows[3])):
        assert ort.ratio_to == "PyTorch" and ort.ratio == pytest.approx(pt.wall_s / ort.wall_s)
        assert ort.threads == pt.threads == 1 and ort.audio_s == pt.audio_s and ort.extra["export_s"] > 0
    assert max(_ort_vs_torch(fe, tmp_path / "onnx" / "bwe_bwe.pt.onnx")) <= TOL


def test_an_unwritable_out_fails_at_once_naming_it(tmp_path):
    """No minute of exporting before finding out the file cannot be written (runs as root too: a missing
    folder and a folder given as the file are checked; permissions where they bite)."""
    import os
    import time

    from specenh.frontends.export import check_writable, export

    fe = build("identity")
    t0 = time.perf_counter()
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(FileNotFoundError, match="a_file/sub cannot be created"):
        export(fe, tmp_path / "a_file" / "sub" / "m.onnx")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export(fe, tmp_path)
    assert time.perf_counter() - t0 < 5
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # not root
            with pytest.raises(PermissionError, match="not writable"):
                check_writable(ro / "m.onnx")
    finally:
        ro.chmod(0o700)
    check_writable(tmp_path / "new_dir" / "ok.onnx")  # a missing folder is made
    assert (tmp_path / "new_dir").is_dir()
