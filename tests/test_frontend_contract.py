"""One contract for every registered front-end (the registry decides which; a new front-end is tested here
without editing this file unless its defaults are too big for a unit test):

- ``enhance`` maps a padded batch to a padded batch of the same layout: log-mel ``[B, D, T] -> [B, D, T']``,
  waveform ``[B, N] -> [B, N']``, lengths ``[B]`` within the output, zero past each length;
- an utterance gives the same output alone as in a batch with a longer one (padding never leaks);
- ``save`` / ``load`` round-trips to the same outputs;
- it is deterministic in eval mode.
"""
from __future__ import annotations

import pytest
import torch

from specenh.frontends.base import REGISTRY, _import_all, build, load

_import_all()
#: constructor options that make a front-end small enough for a unit test (defaults otherwise)
TINY = {
    "stylegan": {"latent_dim": 16, "style_depth": 1, "capacity": 2, "fmap_max": 16},
    "bwe": {"hidden": 32},
    "mask": {"hidden": 16, "lstm_hidden": 16, "lstm_layers": 1},
    "inpaint": {"channels": [8, 16]},
}
NAMES = sorted(n for n, c in REGISTRY.items() if c.standalone and c.__module__.startswith("specenh."))


def _inputs(fe, lengths):
    g = torch.Generator().manual_seed(0)
    if fe.domain == "wave":
        n = max(lengths)
        x = 0.1 * torch.randn(len(lengths), n, generator=g)
    else:
        x = -8.0 + 3.0 * torch.randn(len(lengths), 80, max(lengths), generator=g)
    for i, L in enumerate(lengths):
        x[i, ..., L:] = 0.0
    return x, torch.tensor(lengths)


def _extra(fe, x, lengths):
    return {"clean": x.clone(), "clean_lengths": lengths.clone()} if fe.needs_clean else {}


@pytest.mark.parametrize("name", NAMES)
def test_frontend_contract(name, tmp_path):
    torch.manual_seed(0)
    fe = build({"name": name, **TINY.get(name, {})}).eval()
    short, long_ = (1600, 4000) if fe.domain == "wave" else (23, 57)
    x, lens = _inputs(fe, [long_, short])
    y, yl = fe.enhance(x, lens, **_extra(fe, x, lens))
    assert y.dim() == x.dim() and y.shape[0] == 2 and yl.shape == (2,)
    if fe.domain == "logmel":
        assert y.shape[1] == x.shape[1]
    assert torch.all(yl <= y.shape[-1]) and torch.all(yl > 0)
    assert torch.all(y[1, ..., int(yl[1]):] == 0), "non-zero output past the utterance's length"
    assert torch.isfinite(y).all()
    # the short utterance alone = in the batch (the padding of the batch does not leak into it)
    xs, ls = x[1:2, ..., :short], lens[1:2]
    ya, yla = fe.enhance(xs, ls, **_extra(fe, xs, ls))
    assert int(yla[0]) == int(yl[1])
    torch.testing.assert_close(ya[0, ..., : int(yla[0])], y[1, ..., : int(yl[1])], atol=2e-4, rtol=1e-4)
    # deterministic, and the same after save / load
    y2, _ = fe.enhance(x, lens, **_extra(fe, x, lens))
    torch.testing.assert_close(y2, y, atol=0, rtol=0)
    fe.save(tmp_path / "m.pt")
    y3, _ = load(tmp_path / "m.pt").eval().enhance(x, lens, **_extra(fe, x, lens))
    torch.testing.assert_close(y3, y, atol=1e-6, rtol=1e-6)


def test_every_shipped_frontend_is_covered():
    assert {"identity", "oracle", "stylegan", "mask", "inpaint", "bwe", "specsub", "wiener", "resample"} <= set(NAMES)
