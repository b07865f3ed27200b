"""The StyleGAN enhancer (specenh.frontends.stylegan): contextual loss, truncation, length masking,
batch consistency, checkpoints."""
from __future__ import annotations

import math

import pytest
import torch

from specenh.frontends import build, load
from specenh.frontends.stylegan import Discriminator, StyleGANEnhancer, truncate
from specenh.frontends.stylegan.losses import (consistency_loss, contextual_loss, logmel_patches,
                                               subsample_positions)

TINY = {"latent_dim": 16, "style_depth": 2, "capacity": 2, "fmap_max": 8}


# ----------------------------------------------------------------------------- contextual loss
def _cx_loop(x: torch.Tensor, y: torch.Tensor, h: float, eps: float = 1e-5) -> float:
    """The formula, one item, written out with loops. x [C, Nx], y [C, Ny] (valid positions only)."""
    c, nx = x.shape
    ny = y.shape[1]
    mu = [sum(float(y[k, j]) for j in range(ny)) / ny for k in range(c)]

    def unit(v):
        v = [float(v[k]) - mu[k] for k in range(c)]
        n = math.sqrt(sum(a * a for a in v))
        return [a / n for a in v]

    xs = [unit(x[:, i]) for i in range(nx)]
    ys = [unit(y[:, j]) for j in range(ny)]
    d = [[1.0 - sum(a * b for a, b in zip(xs[i], ys[j])) for j in range(ny)] for i in range(nx)]
    cx = []
    for i in range(nx):
        dmin = min(d[i])
        w = [math.exp((1.0 - d[i][j] / (dmin + eps)) / h) for j in range(ny)]
        s = sum(w)
        cx.append([wj / s for wj in w])
    return -math.log(sum(max(cx[i][j] for i in range(nx)) for j in range(ny)) / ny)


def test_contextual_loss_equals_loop_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 9, generator=g, dtype=torch.float64)
    y = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    xl, yl = torch.tensor([9, 6, 3]), torch.tensor([7, 4, 7])
    for h in (0.5, 0.1):
        got = contextual_loss(x, y, h=h, x_lengths=xl, y_lengths=yl, reduction="none")
        for b in range(3):
            ref = _cx_loop(x[b, :, : xl[b]], y[b, :, : yl[b]], h)
            assert abs(float(got[b]) - ref) < 1e-5, (h, b, float(got[b]), ref)
        assert abs(float(contextual_loss(x, y, h=h, x_lengths=xl, y_lengths=yl)) - float(got.mean())) < 1e-12
    # float32 input agrees too
    got32 = contextual_loss(x.float(), y.float(), x_lengths=xl, y_lengths=yl, reduction="none")
    torch.testing.assert_close(got32.double(), contextual_loss(x, y, x_lengths=xl, y_lengths=yl, reduction="none"),
                               atol=1e-5, rtol=0)


def test_contextual_loss_invariances_and_identity():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 30, generator=g)
    y = torch.randn(2, 16, 25, generator=g)
    ref = contextual_loss(x, y)
    perm_y = y[:, :, torch.randperm(25, generator=g)]
    perm_x = x[:, :, torch.randperm(30, generator=g)]
    torch.testing.assert_close(contextual_loss(x, perm_y), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(contextual_loss(perm_x, y), ref, atol=1e-6, rtol=0)
    assert float(ref) > 0.1
    assert float(contextual_loss(y, y)) < 1e-3
    # the set of targets is covered by the generated one (plus extras): still ~0
    assert float(contextual_loss(torch.cat([y, x], dim=2), y)) < 1e-3


def test_contextual_loss_ignores_padding():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 12, generator=g)
    y = torch.randn(2, 8, 10, generator=g)
    ref = contextual_loss(x, y, reduction="none")
    xp = torch.cat([x, 100 * torch.randn(2, 8, 5, generator=g)], dim=2)
    yp = torch.cat([y, -50 * torch.randn(2, 8, 7, generator=g)], dim=2)
    got = contextual_loss(xp, yp, x_lengths=torch.tensor([12, 12]), y_lengths=torch.tensor([10, 10]), reduction="none")
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    assert not torch.allclose(contextual_loss(xp, yp, reduction="none"), ref, atol=1e-3)


def test_contextual_loss_subsampling_and_gradient():
    g = torch.Generator().manual_seed(3)
    f = torch.randn(2, 4, 50, generator=g)
    sub, sl = subsample_positions(f, torch.tensor([50, 7]), 10, generator=g)
    assert sub.shape == (2, 4, 10) and sl.tolist() == [10, 7]
    # item 1: the 7 valid positions are all kept (in some order), nothing from the padding
    assert sorted(sub[1, 0, :7].tolist()) == sorted(f[1, 0, :7].tolist())
    x = torch.randn(2, 4, 300, generator=g, requires_grad=True)
    y = torch.randn(2, 4, 200, generator=g)
    loss = contextual_loss(x, y, max_positions=64, generator=g)
    loss.backward()
    assert torch.isfinite(loss) and x.grad is not None and x.grad.abs().sum() > 0


def test_logmel_patches_and_consistency():
    spec = torch.randn(2, 80, 20)
    p, n = logmel_patches(spec, torch.tensor([20, 11]), frames=4, frame_stride=2)
    assert p.shape == (2, 80 * 4, 9) and n.tolist() == [9, 4]
    torch.testing.assert_close(p[0, :, 1], spec[0, :, 2:6].reshape(-1))  # time-major positions
    p2, n2 = logmel_patches(spec, torch.tensor([20, 11]), bands=40, frames=4, band_stride=20)
    assert p2.shape == (2, 160, 27) and n2.tolist() == [27, 12]
    x = torch.rand(2, 1, 80, 30)
    lens = torch.tensor([30, 10])
    assert float(consistency_loss(x, x, lens)) == 0.0
    y = x.clone()
    y[1, :, :, 10:] += 5  # padding differences are not counted
    assert float(consistency_loss(x, y, lens)) == 0.0
    y[:, :, :, :10] += 0.1
    assert abs(float(consistency_loss(x, y, lens)) - 0.1 * 20 / 40) < 1e-5


# ----------------------------------------------------------------------------- truncation, styles
def test_truncation():
    fe = StyleGANEnhancer(**TINY)
    fe.mapping.w_avg.copy_(torch.randn(16))
    w = torch.randn(3, 16)
    torch.testing.assert_close(fe.mapping.truncate(w, 0.0), fe.mapping.w_avg.expand(3, -1))
    torch.testing.assert_close(fe.mapping.truncate(w, 1.0), w)
    torch.testing.assert_close(fe.mapping.truncate(w, 0.5), (w + fe.mapping.w_avg) / 2)
    torch.testing.assert_close(truncate(w, fe.mapping.w_avg, 0.0), fe.mapping.w_avg.expand(3, -1))
    # eval with psi=0 uses exactly w_avg; the running mean moves with beta 0.995
    fe.eval()
    assert all(torch.equal(s[0], fe.mapping.w_avg) for s in fe.styles(2, torch.device("cpu"), psi=0.0))
    before = fe.mapping.w_avg.clone()
    fe.mapping.update_w_avg(w)
    torch.testing.assert_close(fe.mapping.w_avg, 0.995 * before + 0.005 * w.mean(0))


def test_truncation_only_at_inference():
    fe = StyleGANEnhancer(**TINY)
    fe.mapping.w_avg.fill_(3.0)
    z = torch.randn(2, 16)
    w = fe.mapping(z)
    fe.train()
    assert torch.equal(fe.styles(2, torch.device("cpu"), z=z)[0], w)  # training: no truncation
    fe.eval()
    torch.testing.assert_close(fe.styles(2, torch.device("cpu"), z=z)[0], fe.mapping.truncate(w, fe.psi))
    fe2 = StyleGANEnhancer(**TINY, truncate_in_training=True).train()
    fe2.load_state_dict(fe.state_dict())
    torch.testing.assert_close(fe2.styles(2, torch.device("cpu"), z=z)[0], fe.mapping.truncate(w, 0.7))


# ----------------------------------------------------------------------------- generator
def _randomise(fe: StyleGANEnhancer) -> StyleGANEnhancer:
    """Non-zero noise strengths/biases and w_avg, so that every path is exercised."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in fe.named_parameters():
            if "noise_strength" in n or n.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        fe.mapping.w_avg.copy_(torch.randn(fe.mapping.w_avg.shape, generator=g))
    return fe


@pytest.mark.parametrize("dtype,atol,refine,enc,gate", [
    (torch.float64, 1e-5, 0, 0, False), (torch.float32, 1e-4, 0, 0, False), (torch.float32, 1e-4, 2, 0, False),
    (torch.float64, 1e-5, 1, 5, False), (torch.float64, 1e-5, 0, 5, True)])
def test_generator_batch_consistency(dtype, atol, refine, enc, gate):
    torch.manual_seed(0)
    fe = StyleGANEnhancer(**{**TINY, "capacity": 4, "fmap_max": 16}, refine_blocks=refine,
                          refine_channels=6 if refine else None, cond_channels=enc, cond_layers=3,
                          residual=gate, gate=gate, cond_relative=gate)  # the gated case: relative level too
    if gate:
        assert fe.generator.encoder.inp.weight.shape[1] == 2
    fe = _randomise(fe).to(dtype).eval()
    if enc:  # condition encoder: dilations 1, 2, 4 in time; one projection per block to its channels
        assert [c.dilation for c in fe.generator.encoder.convs] == [(1, 1), (1, 2), (1, 4)]
        assert [p.weight.shape[:2] for p in fe.generator.cond_proj] == [
            (blk.conv2.conv.weight.shape[0], enc) for blk in (*fe.generator.blocks, *fe.generator.refine)]
    assert fe.n_styles == 5 + refine and len(fe.generator.refine) == refine
    if refine:  # time-dilated full-resolution blocks: 1, 2 then 4, 8 frames
        assert [blk.conv2.conv.dilation for blk in fe.generator.refine] == [(1, 2), (1, 8)][:refine]
        assert fe.generator.refine[-1].conv2.conv.weight.shape[:2] == (6, 6)
    lens = torch.tensor([53, 100, 17, 1, 64])
    x = (torch.randn(5, 80, 100) * 3 - 9).to(dtype)
    yb, yl = fe.enhance(x, lens)
    assert torch.equal(yl, lens)
    for i, n in enumerate(lens.tolist()):
        yi, _ = fe.enhance(x[i : i + 1, :, :n], lens[i : i + 1])
        torch.testing.assert_close(yb[i, :, :n], yi[0], atol=atol, rtol=0)
        assert torch.all(yb[i, :, n:] == 0)
    # padding content does not matter
    x2 = x.clone()
    x2[2, :, 17:] = 1e3
    torch.testing.assert_close(fe.enhance(x2, lens)[0], yb, atol=atol, rtol=0)
    # deterministic at inference (zero noise, fixed latent) and different from the input
    torch.testing.assert_close(fe.enhance(x, lens)[0], yb, atol=0, rtol=0)
    assert (yb[0, :, :53] - x[0, :, :53]).abs().mean() > 1e-3


def test_generator_shapes_any_length():
    fe = StyleGANEnhancer(**TINY).eval()
    for t in (1, 3, 15, 16, 17, 33, 101):
        x = torch.randn(2, 80, t) - 8
        y, yl = fe.enhance(x, torch.tensor([t, max(1, t // 2)]))
        assert y.shape == (2, 80, t) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="80"):
        fe.enhance(torch.randn(1, 64, 10), torch.tensor([10]))
    # other band counts: padded to the generator's grid in frequency and cropped back
    fe64 = StyleGANEnhancer(**TINY, n_bands=100).eval()
    assert fe64.enhance(torch.randn(1, 100, 21), torch.tensor([21]))[0].shape == (1, 100, 21)


@pytest.mark.parametrize("refine,enc", [(0, 0), (1, 0), (1, 4)])
def test_residual_generator_starts_as_identity(refine, enc):
    fe = StyleGANEnhancer(**TINY, residual=True, refine_blocks=refine, cond_channels=enc).eval()
    x = torch.randn(2, 80, 37) * 3 - 9
    lens = torch.tensor([37, 21])
    y, _ = fe.enhance(x, lens)
    torch.testing.assert_close(y[0], x[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(y[1, :, :21], x[1, :, :21], atol=1e-4, rtol=0)
    fe.train()
    out, _ = fe(x, lens)
    out.sum().backward()  # the zero-initialised to-spectrogram weights get gradients first
    assert fe.generator.blocks[-1].to_spec.conv.weight.grad.abs().sum() > 0
    if refine:
        assert fe.generator.refine[-1].to_spec.conv.weight.grad.abs().sum() > 0
    if enc:  # the encoder gets gradients only through the to-spectrogram weights: none at step 0
        assert fe.generator.encoder.inp.weight.grad.abs().sum() == 0


def test_training_mode_is_stochastic_and_all_parameters_get_gradients():
    torch.manual_seed(0)
    fe = StyleGANEnhancer(**TINY, refine_blocks=1, cond_channels=3).train()
    x = torch.randn(3, 80, 40) - 8
    lens = torch.tensor([40, 33, 20])
    y1, _ = fe(x, lens)
    y2, _ = fe(x, lens)
    assert not torch.allclose(y1, y2)
    (y1.pow(2).mean()).backward()
    missing = [n for n, p in fe.named_parameters() if p.grad is None]
    assert not missing, missing
    d = Discriminator(capacity=1, fmap_max=8)
    d(torch.rand(3, 1, 80, 40), lens).sum().backward()
    assert all(p.grad is not None for p in d.parameters())


def test_default_size_and_registry():
    fe = build({"name": "stylegan"})
    assert isinstance(fe, StyleGANEnhancer) and fe.domain == "logmel" and fe.trainable
    n = sum(p.numel() for p in fe.parameters())
    assert 2.0e6 <= n <= 3.0e6, n
    assert fe.generator.n_blocks == 5 and fe.generator.factor == 16
    with pytest.raises(TypeError, match="unknown"):
        StyleGANEnhancer(capacityy=3)
    with pytest.raises(ValueError, match="refine_blocks"):
        StyleGANEnhancer(**TINY, refine_blocks=-1)
    with pytest.raises(ValueError, match="cond_channels"):
        StyleGANEnhancer(**TINY, cond_channels=-2)


def test_checkpoint_roundtrip_and_inference_options(tmp_path):
    torch.manual_seed(0)
    fe = _randomise(StyleGANEnhancer(**TINY, psi=0.5)).eval()
    p = tmp_path / "model.pt"
    fe.save(p)
    fe2 = load(p)
    assert isinstance(fe2, StyleGANEnhancer) and fe2.psi == 0.5
    assert torch.equal(fe2.mapping.w_avg, fe.mapping.w_avg)
    x = torch.randn(2, 80, 45) - 9
    lens = torch.tensor([45, 30])
    y, _ = fe.enhance(x, lens)
    torch.testing.assert_close(fe2.enhance(x, lens)[0], y, atol=0, rtol=0)
    # psi is an inference option: overridable after loading (strings from a command line too), and saved
    fe2.set_inference_options(psi="1.0")
    assert fe2.psi == 1.0 and fe2.config["psi"] == 1.0
    assert not torch.allclose(fe2.enhance(x, lens)[0], y)
    fe2.save(tmp_path / "m2.pt")
    assert load(tmp_path / "m2.pt").psi == 1.0
    with pytest.raises(ValueError, match="unknown"):
        fe2.set_inference_options(foo=1)


# ----------------------------------------------------------------------------- discriminator
def test_discriminator_length_masking():
    torch.manual_seed(0)
    d = Discriminator(capacity=2, fmap_max=16).eval()
    with torch.no_grad():
        for n, p in d.named_parameters():
            if n.endswith("b1") or n.endswith("b2") or "bias" in n:
                p.normal_(0, 0.1)
    x = torch.rand(3, 1, 80, 70)
    lens = torch.tensor([70, 41, 9])
    ref = d(x, lens)
    x2 = x.clone()
    x2[1, :, :, 41:] = 123.0
    x2[2, :, :, 9:] = -7.0
    torch.testing.assert_close(d(x2, lens), ref, atol=1e-5, rtol=0)
    for i, n in enumerate(lens.tolist()):  # and equals the logit of the utterance alone
        torch.testing.assert_close(d(x[i : i + 1, :, :, :n], lens[i : i + 1]), ref[i : i + 1], atol=1e-5, rtol=0)
    assert ref.shape == (3,)


@pytest.mark.parametrize("enc", [0, 3])
def test_gated_generator_starts_as_identity_and_gains_attenuate(enc):
    fe = StyleGANEnhancer(**TINY, residual=True, gate=True, cond_channels=enc).eval()
    x = torch.randn(2, 80, 29) * 2 - 8
    lengths = torch.tensor([29, 17])
    y, _ = fe(x, lengths)
    assert torch.allclose(y[0], x[0], atol=1e-5) and torch.allclose(y[1, :, :17], x[1, :, :17], atol=1e-5)
    assert torch.all(y[1, :, 17:] == 0)
    assert fe.generator.blocks[0].to_spec.conv.weight.shape[0] == 2  # (correction, gain logit)
    # a large negative gain logit everywhere: every valid bin goes to the floor (normalised 0)
    for blk in fe.generator.blocks:
        blk.to_spec.bias.data[1] = -30.0
    y, _ = fe(x, lengths)
    floor = fe.config["norm_min"]
    assert torch.allclose(y[0], torch.full_like(y[0], floor), atol=1e-4)
    assert torch.all(y[1, :, 17:] == 0)


def test_gate_needs_residual():
    with pytest.raises(ValueError, match="gate needs residual"):
        StyleGANEnhancer(**TINY, gate=True)


def test_relative_level_ignores_padding_and_level():
    from specenh.frontends.stylegan.model import ConditionEncoder, time_mask

    x = torch.rand(2, 1, 6, 10)
    lengths = torch.tensor([10, 4])
    m = time_mask(lengths, 10)
    x = x * m
    rel = ConditionEncoder.relative_level(x, m)
    assert torch.all(rel[1, :, :, 4:] == 0) and torch.all(rel <= 0)
    # each band's peak over the valid frames maps to 0; padding content and a constant offset do not matter
    torch.testing.assert_close(rel[1, 0, :, :4].amax(-1), torch.zeros(6))
    x2 = x.clone()
    x2[1, :, :, 4:] = 5.0
    x2[1, :, :, :4] += 0.3
    torch.testing.assert_close(ConditionEncoder.relative_level(x2, m), rel)
    with pytest.raises(ValueError, match="cond_relative"):
        StyleGANEnhancer(**TINY, cond_relative=True)
