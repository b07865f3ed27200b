"""Fail fast: before a recipe does any work, check that everything the chosen stages need exists.

Run by the driver (``egs/TEMPLATE/specenh.sh``) once, with its options; prints every problem (with a
close match for misspelt names) and exits 1, so a typo such as ``--test_conditions noise_5dbb`` stops the
run at once instead of at stage 2 with an empty data dir, and ``--stage 5`` with nothing trained says
which models are missing instead of "2 / 2 jobs failed". No torch: it starts in a fraction of a second.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from specenh.frontends.spec import _yaml, decode_spec, kind, tuned_path


def _near(name: str, pool: list[str]) -> str:
    m = difflib.get_close_matches(name, pool, n=1)
    return f" (did you mean {m[0]!r}?)" if m else ""


def targeted_args(frontend_args: str, frontend: str) -> list[str]:
    """The ``--frontend_args`` overrides that apply to ``frontend``: untargeted ``key=value`` ones and
    ``<frontend>:key=value`` ones (others are for other front-ends)."""
    out = []
    for a in frontend_args.split():
        head, _, rest = a.partition("=")
        if ":" in head:
            target, key = head.split(":", 1)
            if target == frontend:
                out.append(f"{key}={rest}")
        else:
            out.append(a)
    return out


def check(*, stage: int, stop_stage: int, degrade_conf_dir: Path, train_conditions: list[str],
          test_conditions: list[str], frontend_conf_dir: Path, frontends: list[str], exp_dir: Path,
          asr_model: str, asr_config: Path, frontend_args: str = "", judge_model: str = "") -> list[str]:
    """Every problem the stages in [stage, stop_stage] would hit (empty: all is in place)."""
    on = lambda n: stage <= n <= stop_stage  # noqa: E731
    probs: list[str] = []
    if on(2):
        from specenh.degrade.sweep import exists, sweeps_in

        have = sorted(p.stem for p in Path(degrade_conf_dir).glob("*.yaml"))
        have += [c["name"] for conds in sweeps_in(degrade_conf_dir).values() for c in conds]
        for c in dict.fromkeys(train_conditions + test_conditions):
            if not exists(c, degrade_conf_dir):
                probs.append(f"condition {c!r}: no {degrade_conf_dir}/{c}.yaml{_near(c, have)}")
    if asr_model == "train":
        if on(3) and not Path(asr_config).is_file():
            probs.append(f"--asr_config {asr_config}: file not found")
        if not on(3) and (on(4) or on(5)) and not (Path(exp_dir) / "asr" / "model.nemo").is_file():
            probs.append(f"the reference ASR {exp_dir}/asr/model.nemo does not exist: run stage 3 first")
    elif asr_model.endswith(".nemo") and not Path(asr_model).is_file():
        probs.append(f"--asr_model {asr_model}: file not found")
    from specenh.frontends.base import trainable_names, untrained_names  # torch: the registry

    untrained, trainable = set(untrained_names()), set(trainable_names())
    known = sorted(untrained | {p.stem for p in Path(frontend_conf_dir).glob("*.yaml") if p.stem != "sets"})
    trained_now = {f for f in frontends if on(4) and kind(f, frontend_conf_dir) == "train"}

    def model_ready(path: str, who: str) -> None:
        p = Path(path)
        if p.suffix in (".pt", ".ckpt", ".pth") and not p.is_file():
            owner = p.parent.name[len("frontend_"):] if p.parent.name.startswith("frontend_") else None
            if owner not in trained_now:
                probs.append(f"{who}: {p} does not exist (train it: --stage 4 --frontends {owner or '...'})")

    for f in frontends:
        k = kind(f, frontend_conf_dir)
        if k == "builtin" and f not in untrained:
            hint = (f" (a trainable front-end needs {frontend_conf_dir}/{f}.yaml)" if f in trainable
                    else _near(f, known))
            probs.append(f"front-end {f!r}: not a registered front-end nor a config in {frontend_conf_dir}{hint}")
            continue
        tuned = tuned_path(f, frontend_conf_dir, exp_dir) if k == "auto" else None
        if tuned is not None and on(4):  # stage 4 decodes the validation subset with the members to tune auto
            for m in _yaml(Path(frontend_conf_dir) / f"{f}.yaml")["members"]:
                model_ready(str(m), f"front-end {f!r} (member {m}, needed to tune its margin in stage 4)")
        if not on(5) and not on(7):
            continue
        if tuned is not None and not on(4) and not Path(tuned).is_file():
            probs.append(f"front-end {f!r}: its tuned config {tuned} does not exist (stage 4 chooses its "
                         f"selection margin on the validation subset: --stage 4 --frontends {f})")
        if k == "train":
            model_ready(decode_spec(f, frontend_conf_dir, exp_dir), f"front-end {f!r}")
        elif k == "inference":
            model_ready(str(_yaml(Path(frontend_conf_dir) / f"{f}.yaml")["checkpoint"]), f"front-end {f!r}")
        elif k == "auto":
            for m in _yaml(Path(frontend_conf_dir) / f"{f}.yaml")["members"]:
                model_ready(str(m), f"front-end {f!r} (member {m})")
    for a in frontend_args.split():
        head = a.partition("=")[0]
        if "=" not in a:
            probs.append(f"--frontend_args {a!r}: not key=value (or name:key=value)")
        elif ":" in head and head.split(":", 1)[0] not in frontends:
            probs.append(f"--frontend_args {a!r}: front-end {head.split(':', 1)[0]!r} is not among --frontends")
    if trained_now and not train_conditions:
        probs.append(f"--train_conditions is empty but stage 4 trains {' '.join(sorted(trained_now))}: name the "
                     f"degradations to train on (conditions in {degrade_conf_dir})")
    if on(4) and frontend_args.strip():  # the overridden training configs, resolved as stage 4 will
        probs += _check_training_configs(sorted(trained_now), frontend_conf_dir, frontend_args)
    if judge_model and on(7):
        from specenh.metrics.judge import JudgeUnavailable, faster_whisper_available, resolve_model

        if not faster_whisper_available():
            probs.append(f"--judge_model {judge_model}: the Whisper judge needs faster-whisper (pip install -e .[judge])")
        try:
            resolve_model(judge_model)
        except JudgeUnavailable as e:
            probs.append(str(e))
    return probs


def _check_training_configs(names: list[str], conf_dir: Path, frontend_args: str) -> list[str]:
    """Stage 4's config errors (an unknown or misspelt key, a bad value) for each front-end it will train with
    ``--frontend_args`` applied, named with the argument and the closest known key."""
    from specenh.train import check_config
    from specenh.utils.config import load_config

    probs = []
    for f in names:
        args = targeted_args(frontend_args, f)
        if not args:
            continue
        try:
            cfg = load_config(Path(conf_dir) / f"{f}.yaml")
            cfg.pop("inference", None)  # the model's inference defaults, not a training key
            base = check_config(f, cfg)
        except (ValueError, KeyError, TypeError) as e:
            probs.append(f"front-end {f!r}: {Path(conf_dir) / f'{f}.yaml'}: {e}")
            continue
        known = _flat_keys(base)
        for a in args:
            key, _, value = a.partition("=")
            if key not in known:
                probs.append(f"front-end {f!r}: --frontend_args {a!r}: unknown config key {key!r}{_near(key, sorted(known))}")
                continue
            default = known[key]
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                try:
                    float(value)
                except ValueError:
                    probs.append(f"front-end {f!r}: --frontend_args {a!r}: {key} must be a number (now {default!r})")
    return probs


def _flat_keys(cfg: dict, prefix: str = "") -> dict[str, object]:
    """``{"train.max_steps": 500, ...}``: every leaf key of a nested config with its value."""
    out: dict[str, object] = {}
    for k, v in cfg.items():
        if isinstance(v, dict) and v:
            out.update(_flat_keys(v, f"{prefix}{k}."))
        out[f"{prefix}{k}"] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specenh.stages.preflight", description=__doc__.splitlines()[0])
    ap.add_argument("--stage", type=int, required=True)
    ap.add_argument("--stop-stage", type=int, required=True)
    ap.add_argument("--degrade-conf-dir", type=Path, required=True)
    ap.add_argument("--train-conditions", default="")
    ap.add_argument("--test-conditions", default="")
    ap.add_argument("--frontend-conf-dir", type=Path, required=True)
    ap.add_argument("--frontends", default="")
    ap.add_argument("--exp-dir", type=Path, required=True)
    ap.add_argument("--asr-model", required=True)
    ap.add_argument("--asr-config", type=Path, required=True)
    ap.add_argument("--frontend-args", default="")
    ap.add_argument("--judge-model", default="")
    a = ap.parse_args(argv)
    probs = check(stage=a.stage, stop_stage=a.stop_stage, degrade_conf_dir=a.degrade_conf_dir,
                  train_conditions=a.train_conditions.split(), test_conditions=a.test_conditions.split(),
                  frontend_conf_dir=a.frontend_conf_dir, frontends=a.frontends.split(), exp_dir=a.exp_dir,
                  asr_model=a.asr_model, asr_config=a.asr_config, frontend_args=a.frontend_args,
                  judge_model=a.judge_model)
    for p in probs:
        print(f"ERROR (before any work): {p}", file=sys.stderr)
    return 1 if probs else 0


if __name__ == "__main__":
    sys.exit(main())
