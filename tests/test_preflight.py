"""Fail fast (specenh.stages.preflight and the driver): missing conditions, configs, models and misdirected
--frontend_args are reported before any work, with a close match for typos."""
from __future__ import annotations

from pathlib import Path

from specenh.frontends.base import REGISTRY, _import_all
from specenh.stages.preflight import check, targeted_args

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "egs" / "mini"


def _check(tmp_path: Path, **kw) -> list[str]:
    args = dict(stage=0, stop_stage=7, degrade_conf_dir=MINI / "conf" / "degrade", train_conditions=["noise_5db"],
                test_conditions=["noise_0db"], frontend_conf_dir=MINI / "conf" / "frontend",
                frontends=["identity", "stylegan"], exp_dir=tmp_path / "exp", asr_model="train",
                asr_config=REPO / "conf" / "asr" / "conformer_ctc_mini.yaml")
    args.update(kw)
    return check(**args)


def test_a_full_run_needs_nothing_that_is_missing(tmp_path):
    assert _check(tmp_path) == []


def test_typos_and_missing_models_are_named(tmp_path):
    probs = _check(tmp_path, test_conditions=["noise_5dbb"], frontends=["identity", "stylgan"])
    assert any("noise_5dbb" in p and "did you mean 'noise_5db'" in p for p in probs)
    assert any("'stylgan'" in p and "did you mean 'stylegan'" in p for p in probs)
    # stage 5 alone with nothing trained: the ASR and the models are named
    probs = _check(tmp_path, stage=5, stop_stage=5, frontends=["identity", "stylegan", "stylegan_psi0.5", "auto"])
    assert any("asr/model.nemo does not exist" in p for p in probs)
    assert any("front-end 'stylegan'" in p and "frontend_stylegan/model.pt does not exist" in p for p in probs)
    assert any("'stylegan_psi0.5'" in p for p in probs) and any("member exp/frontend_bwe/model.pt" in p for p in probs)
    # trained in the same run: fine
    assert not any("stylegan" in p for p in _check(tmp_path, stage=4, stop_stage=5,
                                                   frontends=["stylegan", "stylegan_psi0.5"])
                   if "asr" not in p)


def test_tuned_auto_needs_stage4_or_its_tuned_config(tmp_path, monkeypatch):
    """egs/mini's auto has a tune: block: stage 5 alone needs exp/frontend_auto/auto.yaml, which stage 4 writes
    (and stage 4 needs the members)."""
    monkeypatch.chdir(tmp_path)  # members are paths relative to the recipe dir
    exp = tmp_path / "exp"
    for m in ("stylegan", "bwe", "inpaint", "mask"):
        (exp / f"frontend_{m}").mkdir(parents=True)
        (exp / f"frontend_{m}" / "model.pt").write_bytes(b"x")
    (exp / "asr").mkdir()
    (exp / "asr" / "model.nemo").write_bytes(b"x")
    probs = _check(tmp_path, stage=5, stop_stage=5, frontends=["identity", "auto"])
    assert len(probs) == 1 and "frontend_auto/auto.yaml does not exist" in probs[0] and "--stage 4" in probs[0]
    assert _check(tmp_path, stage=4, stop_stage=5, frontends=["identity", "auto"]) == []
    assert _check(tmp_path, stage=5, stop_stage=5, frontends=["identity", "auto_argmax"]) == []  # nothing to tune
    (exp / "frontend_auto").mkdir()
    (exp / "frontend_auto" / "auto.yaml").write_text("members: [identity]\n")
    assert _check(tmp_path, stage=5, stop_stage=5, frontends=["identity", "auto"]) == []
    (exp / "frontend_mask" / "model.pt").unlink()
    probs = _check(tmp_path, stage=4, stop_stage=4, frontends=["identity", "auto"])
    assert any("member exp/frontend_mask/model.pt" in p and "tune its margin" in p for p in probs)


def test_frontend_args_target_one_frontend(tmp_path):
    assert targeted_args("train.seed=1 stylegan:train.lr_g=1e-3 mask:train.lr=2", "stylegan") == \
        ["train.seed=1", "train.lr_g=1e-3"]
    assert targeted_args("stylegan:train.lr_g=1e-3", "mask") == []
    probs = _check(tmp_path, frontend_args="bwe:train.lr=1")
    assert any("front-end 'bwe' is not among --frontends" in p for p in probs)


def test_the_front_end_lists_come_from_the_registry():
    """Every module of specenh/frontends is discovered (no list to extend); the lists preflight uses."""
    from specenh.frontends.base import frontend_modules, trainable_names, untrained_names

    _import_all()
    assert "specenh.frontends.stylegan" in frontend_modules() and "specenh.frontends.base" not in frontend_modules()
    ours = lambda names: [n for n in names if REGISTRY[n].__module__.startswith("specenh.")]  # noqa: E731 (tests register more)
    assert ours(untrained_names()) == ["identity", "oracle", "resample", "specsub", "wiener"]
    assert ours(trainable_names()) == ["bwe", "inpaint", "mask", "stylegan"]
    assert "auto" in REGISTRY and "auto" not in untrained_names()  # needs its members (a YAML)


def test_frontend_args_and_empty_conditions_are_checked_before_any_work(tmp_path):
    """An unknown (misspelt) training key gets "did you mean", a non-number where a number belongs names the key,
    and training with no --train_conditions is refused: in preflight, not when stage 4's job fails."""
    probs = _check(tmp_path, stage=4, stop_stage=4, frontends=["stylegan", "bwe"],
                   frontend_args="stylegan:loss.cx_weigth=2 bwe:train.max_steps=abc")
    assert any("'loss.cx_weigth'" in p and "did you mean 'loss.cx_weight'" in p for p in probs)
    assert any("train.max_steps must be a number" in p for p in probs)
    assert _check(tmp_path, stage=3, stop_stage=4, frontends=["stylegan"], frontend_args="train.lr_g=1e-3") == []
    probs = _check(tmp_path, stage=4, stop_stage=4, frontends=["stylegan"], train_conditions=[])
    assert any("--train_conditions is empty" in p for p in probs)
