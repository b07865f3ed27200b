"""Severity sweeps: a condition YAML with a grid expands into one condition per value, stage 2 loads them by
name, condition.yaml keeps the swept value, and the report draws WER against it with CI bands."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specenh.degrade.condition import load_condition
from specenh.degrade.sweep import expand_names, value_tag

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf" / "degrade"


def test_expansion_and_names():
    assert [value_tag(v) for v in (-5, 0, 0.25, 1000, 2.0)] == ["m5", "0", "0p25", "1000", "2"]
    names = expand_names(["noise_5db snr_sweep", "lowpass_sweep", "holes_sweep"], CONF)
    assert names[:3] == ["noise_5db", "snr_sweep_m5", "snr_sweep_0"] and "lowpass_sweep_6000" in names
    assert "holes_sweep_0p5" in names and len(names) == 16


def test_expanded_conditions_load_and_apply():
    c = load_condition(CONF / "snr_sweep_m5.yaml")
    assert c.name == "snr_sweep_m5" and c.steps[0].params["snr"] == [-5]
    assert c.sweep == {"name": "snr_sweep", "param": "steps.0.snr", "value": -5, "unit": "dB SNR"}
    assert c.to_dict()["sweep"]["value"] == -5
    lp = load_condition(CONF / "lowpass_sweep_1000.yaml")
    assert lp.steps[0].params["cutoff"] == 1000
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    out = lp.apply(wave, 16000, np.random.default_rng(1))
    assert out.wave.shape == wave.shape
    with pytest.raises(Exception, match="sweep file cannot be applied"):
        load_condition(CONF / "snr_sweep.yaml")
    with pytest.raises(Exception):
        load_condition(CONF / "snr_sweep_7.yaml")  # not a value of the sweep


def test_report_draws_wer_against_the_swept_value(tmp_path):
    from specenh.report.results import Entry, sweep_plots

    entries = []
    for f, base in (("identity", 60.0), ("stylegan", 55.0)):
        for v in (-5, 0, 5):
            s = {"wer": (base - 3 * v) / 100, "ci_wer": [(base - 3 * v - 2) / 100, (base - 3 * v + 2) / 100]}
            entries.append(Entry(set=f"test_snr_sweep_{value_tag(v)}", frontend=f, dir=tmp_path, scores=s,
                                 info={"sweep": {"name": "snr_sweep", "param": "steps.0.snr", "value": v,
                                                 "unit": "dB SNR"}}))
    paths = sweep_plots(entries, ["identity", "stylegan"], tmp_path)
    assert [p.name for p in paths] == ["wer_sweep_snr_sweep.png"] and paths[0].stat().st_size > 5000
    json.dumps([str(p) for p in paths])
