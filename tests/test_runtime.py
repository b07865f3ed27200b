"""--runtime: which front-ends run in onnxruntime, and the cached graph equals PyTorch (test_enhance_audio.py
runs stage 5 and enhance-audio with it)."""
from __future__ import annotations

import pytest
import torch

from specenh.frontends.base import build, resolve
from specenh.stages.runtime import OnnxFrontEnd, export_cached, graph_fingerprint, with_runtime


def test_pytorch_is_unchanged_and_untrained_frontends_stay_in_pytorch(tmp_path):
    fe = build("identity")
    assert with_runtime(fe, "pytorch") is fe and with_runtime(fe, "onnx", cache_dir=tmp_path) is fe
    assert with_runtime(build("specsub"), "onnx", cache_dir=tmp_path).name == "specsub"
    with pytest.raises(ValueError, match="--runtime must be one of"):
        with_runtime(fe, "tensorrt")
    assert not list(tmp_path.iterdir())


def test_bwe_graph_is_cached_by_content_and_equals_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    fe = build({"name": "bwe", "hidden": 16}).eval()
    fe.save(tmp_path / "model.pt")
    ofe = with_runtime(resolve(tmp_path / "model.pt").eval(), "onnx", spec=tmp_path / "model.pt")
    assert isinstance(ofe, OnnxFrontEnd) and ofe.onnx_path.parent == tmp_path / "onnx"
    x = -10 + 3 * torch.randn(2, 80, 50)
    x[:, 40:, :] = -16.6355  # a band limit for the extender to fill
    lens = torch.tensor([50, 33])
    torch.testing.assert_close(ofe.enhance(x, lens)[0], fe.enhance(x, lens)[0], atol=1e-4, rtol=1e-4)
    mtime = ofe.onnx_path.stat().st_mtime_ns
    assert export_cached(fe, tmp_path / "onnx") == ofe.onnx_path and ofe.onnx_path.stat().st_mtime_ns == mtime
    other = build({"name": "bwe", "hidden": 16})
    assert graph_fingerprint(other) != graph_fingerprint(fe)  # other weights: another graph
