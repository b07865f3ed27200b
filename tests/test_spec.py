"""What a recipe's front-end name means (specenh.frontends.spec): named sets from the recipe's conf,
kinds, the stage-5 spec; the same answers for the shell driver (python -m ...) as for Python."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from specenh.frontends.spec import decode_spec, expand, kind, member_label, trainer_of, tuned_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "sets.yaml").write_text("all: [identity, stylegan, bwe]\nmore: [all, stylegan_psi0.5, auto]\n")
    (tmp_path / "stylegan.yaml").write_text("model: {}\n")
    (tmp_path / "bwe.yaml").write_text("model: {}\n")
    (tmp_path / "stylegan_psi0.5.yaml").write_text("checkpoint: exp/frontend_stylegan/model.pt\ninference: {psi: 0.5}\n")
    (tmp_path / "auto.yaml").write_text("members: [identity, exp/frontend_stylegan/model.pt]\n")
    return tmp_path


def test_sets_kinds_and_specs(conf):
    assert expand(["more", "identity oracle"], conf) == ["identity", "stylegan", "bwe", "stylegan_psi0.5", "auto",
                                                         "oracle"]
    assert [kind(n, conf) for n in ("identity", "stylegan", "stylegan_psi0.5", "auto")] == \
        ["builtin", "train", "inference", "auto"]
    assert decode_spec("stylegan", conf, "exp") == "exp/frontend_stylegan/model.pt"
    assert decode_spec("stylegan_psi0.5", conf, "exp") == str(conf / "stylegan_psi0.5.yaml")
    assert decode_spec("specsub", conf, "exp") == "specsub"
    assert trainer_of("stylegan_nocx") == "stylegan" and trainer_of("x", {"frontend": "mask"}) == "mask"
    assert member_label("exp/frontend_bwe/model.pt") == "bwe" and member_label("conf/frontend/a_b.yaml") == "a_b"
    assert decode_spec("auto", conf, "exp") == str(conf / "auto.yaml") and tuned_path("auto", conf, "exp") is None
    # an auto config with a tune: block: stage 4 writes the tuned copy, stage 5 decodes with it
    (conf / "auto.yaml").write_text("members: [identity, exp/frontend_stylegan/model.pt]\ntune: {margins: [0, 0.1]}\n")
    assert kind("auto", conf) == "auto" and tuned_path("stylegan", conf, "exp") is None
    assert tuned_path("auto", conf, "exp") == decode_spec("auto", conf, "exp") == "exp/frontend_auto/auto.yaml"
    r = subprocess.run([sys.executable, "-m", "specenh.frontends.spec", "tuned-path", "--conf-dir", str(conf),
                        "--exp-dir", "exp", "auto", "stylegan"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.split("\n")[:2] == ["exp/frontend_auto/auto.yaml", ""]
    (conf / "sets.yaml").write_text("a: [b]\nb: [a]\n")
    with pytest.raises(ValueError, match="includes itself"):
        expand(["a"], conf)


def test_driver_reads_the_same_answers(conf):
    r = subprocess.run([sys.executable, "-m", "specenh.frontends.spec", "expand", "--conf-dir", str(conf), "more"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.split() == ["identity", "stylegan", "bwe", "stylegan_psi0.5", "auto"]
    r = subprocess.run([sys.executable, "-c", "import sys, specenh.frontends.spec; print('torch' in sys.modules)"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip() == "False"  # the driver's many calls stay light


def test_recipe_sets_are_defined_by_the_recipe():
    mini = expand(["all", "ablations"], REPO / "egs" / "mini" / "conf" / "frontend")
    assert "stylegan_noise" in mini and "wiener" in mini
    assert "stylegan_noise" not in expand(["all"], REPO / "conf" / "frontend")
    for n in mini:
        k = kind(n, REPO / "egs" / "mini" / "conf" / "frontend")
        assert k in ("builtin", "train", "inference", "auto"), n
