"""Smoke test of the benchmark command (`specenh bench --quick`): every section runs and writes its rows.

No timing assertions: the figures depend on the machine. The checks are on structure and sanity
(positive throughput, the reference rows present, the JSON readable).
"""
from __future__ import annotations

import json

import pytest
import torch

from specenh import bench
from specenh.cli import main


def test_bench_quick_all_sections(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--quick", "--threads", "1", "--out", str(out), "--work-dir", str(tmp_path / "work"),
               "--recipe-dir", str(tmp_path / "no_recipe"), "--num-utts", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = data["rows"]
    sections = {r["section"] for r in rows}
    # stage5 needs a recipe with features and an ASR; without one it is skipped (logged), never faked
    assert sections == {"features", "frontends", "asr", "train", "vocoder", "loader"}
    assert all(r["xrt"] > 0 and r["wall_s"] > 0 for r in rows)
    names = {r["name"] for r in rows}
    assert "NeMo AudioToMelSpectrogramPreprocessor" in names
    assert any(n.startswith("librosa.griffinlim") for n in names)
    fe = [r for r in rows if r["section"] == "frontends"]
    assert {r["batch"] for r in fe} == {1, 8}
    assert any(r["name"].startswith("stylegan") for r in fe) and any(r["name"].startswith("mask") for r in fe)
    loader = {r["name"]: r for r in rows if r["section"] == "loader"}  # x real time per worker, with/without reverb
    assert set(loader) == {"online pairs: noise_5db", "online pairs: reverb", "online pairs: mix of all but reverb",
                           "online pairs: mix of all"}
    assert all(r["extra"]["items"] > 0 for r in loader.values())
    train = [r for r in rows if r["section"] == "train"]
    assert train[0]["extra"]["steps_per_s"] > 0
    # ratios are against the reference named in the row, in the same run
    ref = [r for r in rows if r["name"] == "NeMo AudioToMelSpectrogramPreprocessor"][0]
    assert ref["ratio"] == pytest.approx(1.0)
    assert "| section | item |" in printed and data["machine"]["torch"]


def test_bench_rejects_unknown_section():
    with pytest.raises(ValueError, match="unknown benchmark section"):
        bench.run(["nope"], quick=True)


def test_default_frontends_skip_private_registrations():
    """A front-end a test registers (name starting with '_') must not enter the benchmark (it broke CI)."""
    from specenh.frontends import REGISTRY, FrontEnd, register

    @register("_bench_probe")
    class _Probe(FrontEnd):
        def forward(self, x, lengths, **kw):
            return x, lengths

    try:
        names = bench.default_frontend_names()
        assert "_bench_probe" not in names and "identity" not in names and "oracle" not in names
        assert {"stylegan", "mask", "wiener"} <= set(names)
    finally:
        REGISTRY.pop("_bench_probe", None)


PEAK_SCRIPT = """
import json, time, torch
from specenh import bench
big = bench._Mem("cpu")
with big:
    a = torch.ones(192 * 2 ** 20 // 4)  # 192 MB, touched
    time.sleep(0.05)
    del a
small = bench._Mem("cpu")
with small:
    b = torch.ones(48 * 2 ** 20 // 4)  # 48 MB, below the earlier peak
    time.sleep(0.05)
    del b
print(json.dumps([big.mb, small.mb]))
"""


def test_peak_memory_sees_a_peak_after_a_larger_one():
    """The CPU peak of an item is measured from its own start, even after an earlier, larger peak (the
    lifetime ru_maxrss read 0 there). In a fresh process: what earlier tests left in the allocator's
    resident heap would otherwise serve the allocation without new pages."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    big, small = json.loads(out.stdout.strip().splitlines()[-1])
    assert big > 150 and 35 < small < 150, (big, small)


def test_bucketed_rows_sit_next_to_batch_1():
    """--batch-frames: a bucketed row after batch 1 and 32, each with its ratio to batch 1 in the same run;
    the buckets hold at most the budget of padded frames."""
    from specenh.bench.core import _feat_batches, bench_frontends, synthetic_audio

    waves = synthetic_audio(6, 0.5, spread=(0.25, 3.0))
    rows = bench_frontends(waves, 1, "cpu", 4, 0.01, ["specsub", "inpaint"], batches=(1, 4), batch_frames=100)
    names = [(r.name, r.batch) for r in rows]
    assert names[:3] == [("specsub (default size)", 1), ("specsub (default size)", 4),
                         ("specsub (default size) [bucketed, <= 100 frames]", 4)]
    for r in rows:
        if r.batch != 1 or "bucketed" in r.name:
            assert r.ratio_to == "batch 1" and r.ratio > 0
    feats = [torch.zeros(80, n) for n in (30, 60, 90, 40)]
    assert all(x.shape[0] * x.shape[-1] <= 100 for x, _ in _feat_batches(feats, 4, 100))
