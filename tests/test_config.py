"""YAML configs with dotted command-line overrides, saved next to experiments."""
from __future__ import annotations

import pytest

from specenh.utils.config import ConfigError, apply_overrides, load_config, save_config
from specenh.utils.io import split_for_job
from specenh.utils.seed import stable_seed


def test_overrides_parse_yaml_values_and_reject_unknown_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  d: 4\n  layers: [1, 2]\ntrain:\n  lr: 0.1\n")
    cfg = load_config(p, ["model.d=8", "model.layers=[3]", "train.lr=2e-3"])
    assert cfg == {"model": {"d": 8, "layers": [3]}, "train": {"lr": 2e-3}}
    with pytest.raises(ConfigError, match="model.dd"):
        load_config(p, ["model.dd=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["model.d"])
    save_config(cfg, tmp_path / "exp" / "config.yaml")
    assert load_config(tmp_path / "exp" / "config.yaml") == cfg


def test_split_for_job_covers_everything_once():
    items = list(range(10))
    parts = [split_for_job(items, 3, j) for j in (1, 2, 3)]
    assert sum(parts, []) == items and [len(p) for p in parts] == [3, 3, 4]
    with pytest.raises(ValueError):
        split_for_job(items, 3, 4)


def test_stable_seed_is_stable():
    assert stable_seed("a", 1) == stable_seed("a", 1) != stable_seed("a", 2)
    assert stable_seed("cond", "utt") == 5280933971993984918  # independent of PYTHONHASHSEED and platform


def test_base_config_chain(tmp_path):
    """A variant YAML names its ``base:`` and states only what differs; overrides still apply on top."""
    from specenh.utils.config import ConfigError, load_config

    (tmp_path / "a.yaml").write_text("model: {dim: 4, depth: 2}\ntrain: {lr: 1.0e-3}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nmodel: {depth: 3}\n")
    (tmp_path / "sub" / "c.yaml").write_text("base: b.yaml\ntrain: {lr: 2.0e-3}\n")
    cfg = load_config(tmp_path / "sub" / "c.yaml", ["model.dim=8"])
    assert cfg == {"model": {"dim": 8, "depth": 3}, "train": {"lr": 2.0e-3}}
    (tmp_path / "x.yaml").write_text("base: y.yaml\n")
    (tmp_path / "y.yaml").write_text("base: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "m.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "m.yaml")


def test_mini_ablation_configs_differ_from_base_only_where_stated():
    from pathlib import Path

    from specenh.utils.config import load_config

    d = Path(__file__).resolve().parents[1] / "egs" / "mini" / "conf" / "frontend"
    base = load_config(d / "stylegan.yaml")
    nocx = load_config(d / "stylegan_nocx.yaml")
    assert nocx["loss"]["cx_weight"] == 0.0 and nocx["model"] == base["model"] and nocx["train"] == base["train"]
    unp = load_config(d / "stylegan_unpaired.yaml")
    assert unp["train"]["unpaired"] is True and unp["loss"]["consistency_target"] == "input"
    noise = load_config(d / "stylegan_noise.yaml")
    assert base["conditions"] == ["*"] and noise["conditions"] == ["noise_*"]
    assert {k: v for k, v in noise.items() if k != "conditions"} == {k: v for k, v in base.items() if k != "conditions"}
    ctc = load_config(d / "stylegan_ctc.yaml")
    assert ctc["loss"]["ctc_weight"] == 1.0 and ctc["train"]["crop_frames"] is None and ctc["model"] == base["model"]
