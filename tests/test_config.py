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


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_recipe_configs_state_only_what_differs_from_their_base():
    """Every config with ``base:`` under egs/*/conf states no key its base already gives the same value."""
    from pathlib import Path

    import yaml

    from specenh.utils.config import load_yaml_with_base

    root = Path(__file__).resolve().parents[1]
    checked, restated = 0, []
    for p in sorted(root.glob("egs/*/conf/**/*.yaml")):
        own = yaml.safe_load(p.read_text(encoding="utf-8"))
        if not isinstance(own, dict) or "base" not in own:
            continue
        base = _flat(load_yaml_with_base(p.parent / own.pop("base")))
        checked += 1
        restated += [f"{p.relative_to(root)}: {k}" for k, v in _flat(own).items() if k in base and base[k] == v]
    assert checked >= 8
    assert not restated, "keys equal to the base's value:\n" + "\n".join(restated)


def test_mini_stylegan_resolves_to_the_config_it_was_trained_with():
    """egs/mini's stylegan.yaml became the shared config plus its differences; resolved with the trainer's
    defaults it is still the config RESULTS.md's models were trained with (a few keys pinned here)."""
    from pathlib import Path

    from specenh.train.gan import DEFAULTS
    from specenh.utils.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "egs/mini/conf/frontend/stylegan.yaml", defaults=DEFAULTS)
    assert cfg["model"]["capacity"] == 4 and cfg["model"]["latent_dim"] == 96 and cfg["model"]["psi"] == 0.7
    assert cfg["loss"]["cx_layers"] == [1, 3, -1] and cfg["loss"]["ctc_weight"] == 0.0
    assert cfg["loss"]["consistency_target"] == "clean" and cfg["loss"]["fm_weight"] == 20.0
    assert cfg["train"]["max_steps"] == 500 and cfg["train"]["lr_g"] == 2.0e-3 and cfg["train"]["batch_size"] == 8
    assert cfg["train"]["select_by"] == "val/l1_enhanced" and cfg["train"]["include_clean"] is True
    assert cfg["inference"]["alpha"] == [0.0, 0.25, 0.5, 0.75, 1.0] and cfg["conditions"] == ["*"]


def test_print_config_marks_defaults_and_trains_nothing(tmp_path, capsys):
    """``train-frontend --print-config``: the resolved config, values from the trainer's defaults marked,
    overrides and --seed applied; without --print-config, --conditions and --exp-dir are required."""
    from pathlib import Path

    import pytest
    import yaml

    from specenh.cli import main

    conf = Path(__file__).resolve().parents[1] / "egs/mini/conf/frontend/stylegan.yaml"
    rc = main(["train-frontend", "--name", "stylegan", "--config", str(conf), "--print-config", "--seed", "3",
               "train.max_steps=7"])
    out = capsys.readouterr().out
    assert rc == 0 and not (tmp_path / "exp").exists()
    cfg = yaml.safe_load(out)
    assert cfg["train"]["seed"] == 3 and cfg["train"]["max_steps"] == 7 and cfg["model"]["capacity"] == 4
    assert cfg["inference"]["alpha"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    lines = {ln.split(":")[0].strip(): ln for ln in out.splitlines() if ":" in ln and not ln.startswith("#")}
    assert lines["warmup_steps"].endswith("# default") and not lines["max_steps"].endswith("# default")
    assert not lines["capacity"].endswith("# default")  # from the base: chain (the shared config), not a default
    with pytest.raises(SystemExit, match="--conditions and --exp-dir required"):
        main(["train-frontend", "--name", "stylegan", "--config", str(conf)])
