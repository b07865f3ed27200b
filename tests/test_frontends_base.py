"""The front-end interface: registry, build/load round trip, identity/oracle, padding masks."""
from __future__ import annotations

import pytest
import torch

from specenh.frontends import REGISTRY, FrontEnd, build, load, mask_padding, register, resolve


def test_registry_has_builtins():
    build("identity")
    assert {"identity", "oracle"} <= set(REGISTRY)
    with pytest.raises(ValueError, match="unknown front-end"):
        build("no_such_frontend")


def test_identity_and_oracle():
    x = torch.randn(2, 80, 10)
    lens = torch.tensor([10, 6])
    y, yl = build("identity").enhance(x, lens)
    assert torch.equal(y[0], x[0]) and torch.equal(y[1, :, :6], x[1, :, :6])
    assert torch.all(y[1, :, 6:] == 0) and torch.equal(yl, lens)
    clean = torch.randn(2, 80, 10)
    o, _ = build("oracle").enhance(x, lens, clean=clean)
    assert torch.equal(o[0], clean[0])
    with pytest.raises(ValueError, match="clean"):
        build("oracle").enhance(x, lens)


@pytest.fixture(autouse=True, scope="module")
def _unregister_test_frontends():
    """The helper front-end below is registered at import; take it out of the global registry after
    this module, so that code listing every front-end (the benchmark) never meets it."""
    yield
    REGISTRY.pop("_test_scale", None)


@register("_test_scale")
class _Scale(FrontEnd):
    trainable = True

    def __init__(self, dim: int = 4, gain: float = 1.0):
        super().__init__(dim=dim, gain=gain)
        self.w = torch.nn.Parameter(torch.randn(dim))
        self.gain = gain

    def forward(self, x, lengths, **kw):
        return x * self.w[None, :, None] * self.gain, lengths


def test_save_load_roundtrip(tmp_path):
    fe = build({"name": "_test_scale", "dim": 4})
    p = tmp_path / "m.pt"
    fe.save(p)
    fe2 = load(p)
    assert isinstance(fe2, _Scale) and fe2.config == {"dim": 4, "gain": 1.0}
    x = torch.randn(3, 4, 7)
    lens = torch.tensor([7, 5, 1])
    torch.testing.assert_close(fe.enhance(x, lens)[0], fe2.enhance(x, lens)[0])
    assert isinstance(resolve(p), _Scale) and isinstance(resolve("identity"), FrontEnd)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt"):
        load(bad)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")


def test_inference_variant_yaml(tmp_path, monkeypatch):
    """A variant YAML reuses a checkpoint with other inference options (the psi ablation's mechanism)."""
    fe = build({"name": "_test_scale", "dim": 4})
    (tmp_path / "exp").mkdir()
    fe.save(tmp_path / "exp" / "m.pt")
    monkeypatch.chdir(tmp_path)  # checkpoint paths are relative to the recipe directory
    var = tmp_path / "scale_x3.yaml"
    var.write_text("checkpoint: exp/m.pt\ninference: {gain: 3.0}\n")
    x, lens = torch.ones(1, 4, 5), torch.tensor([5])
    v = resolve(var)
    assert v.config["gain"] == 3.0 and v.config["dim"] == 4
    torch.testing.assert_close(v.enhance(x, lens)[0], 3.0 * fe.enhance(x, lens)[0])
    assert resolve(var, {"gain": 0.5}).config["gain"] == 0.5  # explicit options override the file's
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("model: {dim: 4}\n")
    with pytest.raises(ValueError, match="checkpoint"):
        resolve(train_cfg)
    with pytest.raises(FileNotFoundError):
        resolve(tmp_path / "missing.yaml")


def test_mask_padding_shapes():
    y = torch.ones(2, 3, 5, 4)
    m = mask_padding(y, torch.tensor([4, 2]))
    assert m[0].sum() == 3 * 5 * 4 and m[1].sum() == 3 * 5 * 2


def test_checkpoint_shape_mismatch_names_file_and_summarises(tmp_path):
    """Issue #19 item 9: weights that do not fit the checkpoint's config: one line naming the file,
    the number of tensors that differ and the first of them (not one "size mismatch" line each)."""
    fe = build({"name": "_test_scale", "dim": 4})
    ck = fe.serialize()
    ck["config"] = {"dim": 6, "gain": 1.0}  # the config edited after training
    p = tmp_path / "edited.pt"
    torch.save(ck, p)
    with pytest.raises(ValueError) as ei:
        load(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: weights do not match front-end '_test_scale'")
    assert "1 tensor(s) differ in shape, first: w (checkpoint [4] vs model [6])" in msg
    assert "size mismatch" not in msg and "\n" not in msg
    # missing / unexpected tensors are summarised the same way
    ck = fe.serialize()
    ck["state_dict"] = {"w": ck["state_dict"]["w"], "extra.weight": torch.zeros(2)}
    torch.save(ck, p)
    with pytest.raises(ValueError, match=r"edited.pt: .*1 not in the model, first: extra.weight"):
        load(p)


def test_real_frontend_checkpoint_mismatch(tmp_path):
    """The same for a real trainable front-end whose edited config changes many tensor shapes."""
    fe = build("mask")
    ck = fe.serialize()
    ck["config"] = {**fe.config, "hidden": 2 * fe.config["hidden"]}
    p = tmp_path / "mask.pt"
    torch.save(ck, p)
    with pytest.raises(ValueError) as ei:
        load(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: weights do not match front-end 'mask'") and "\n" not in msg
    n = int(msg.split("(", 1)[1].split(" tensor(s) differ in shape")[0])
    assert n > 5 and ", first: " in msg and " vs model " in msg


@pytest.mark.parametrize("cfg", [{"name": "inpaint", "channels": [4, 8]},
                                 {"name": "stylegan", "latent_dim": 16, "style_depth": 2, "capacity": 2,
                                  "fmap_max": 8}])
def test_cpu_channels_last_inference_equals_the_default_layout_and_training_gets_it_back(cfg):
    """A front-end with cpu_channels_last runs inference on a CPU with channels-last 4-D weights (faster oneDNN
    convolutions): the output equals the default layout's to float rounding; train() restores the default
    layout, so a training step (and a saved checkpoint) sees the weights as before."""
    torch.manual_seed(0)
    fe = build(cfg)
    assert type(fe).cpu_channels_last
    x, lens = torch.randn(3, 80, 40) - 8, torch.tensor([40, 33, 17])
    ref = build(cfg)
    ref.load_state_dict(fe.state_dict())
    ref.cpu_channels_last = False  # the instance attribute shadows the class's
    y_ref, _ = ref.enhance(x, lens)
    y, _ = fe.enhance(x, lens)
    w4 = [p for p in fe.parameters() if p.dim() == 4]
    assert w4 and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in w4
                      if p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1)
    assert torch.allclose(y, y_ref, atol=1e-4, rtol=0)
    fe.train()
    assert all(p.is_contiguous() for p in fe.parameters())
    out, _ = fe(x, lens)
    out.float().mean().backward()  # ordinary tensors: autograd works after inference
    assert all(p.grad is not None for p in w4 if p.requires_grad)
