"""Stage 5 merge: collect the decode jobs' hypotheses and score them (no torch, no NeMo: a recipe runs
one merge process per set and front-end, and each should start in well under a second)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from specenh.data.kaldi import read_kv, write_kv

log = logging.getLogger("specenh.decode")


def merge_and_score(feats_dir: str | Path, out_dir: str | Path, *, nj: int, frontend: str = "", asr_model: str = "",
                    n_boot: int = 1000, seed: int = 0) -> dict:
    """Merge job hypotheses into ``out_dir/hyp`` and score against ``feats_dir/text``."""
    from specenh.metrics.wer import score, write_results

    feats_dir, out_dir = Path(feats_dir), Path(out_dir)
    missing = [j for j in range(1, nj + 1) if not (out_dir / ".done" / f"decode.{j}").exists()]
    if missing:
        raise RuntimeError(f"{out_dir}: decode jobs {missing} of {nj} have not finished; rerun stage 5")
    hyps: dict[str, str] = {}
    timing = {"audio_s": 0.0, "enhance_s": 0.0, "decode_s": 0.0}
    runtimes = set()
    for j in range(1, nj + 1):
        if (out_dir / f"hyp.{j}").is_file():
            hyps.update(read_kv(out_dir / f"hyp.{j}", allow_empty_value=True))
        t = json.loads((out_dir / f"timing.{j}.json").read_text())
        for k in timing:
            timing[k] += t[k]
        runtimes.add(t.get("runtime", "pytorch"))
    refs = read_kv(feats_dir / "text", allow_empty_value=True)
    write_kv(out_dir / "hyp", hyps)
    choices: dict[str, str] = {}
    for j in range(1, nj + 1):
        if (out_dir / f"choice.{j}").is_file():
            choices.update(read_kv(out_dir / f"choice.{j}"))
    if choices:
        write_kv(out_dir / "choice", choices)
    cand_files = [out_dir / f"candidates.{j}.jsonl" for j in range(1, nj + 1)]
    lines: list[str] = []
    if any(f.is_file() for f in cand_files):  # every candidate's confidence and hypothesis, one file
        lines = sorted(ln for f in cand_files if f.is_file() for ln in f.read_text(encoding="utf-8").splitlines() if ln)
        (out_dir / "candidates.jsonl").write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    from specenh.asr.base import text_normalizer_of

    result = score(refs, hyps, n_boot=n_boot, seed=seed, normalizer=text_normalizer_of(asr_model))
    write_results(out_dir / "scoring", refs, hyps, result)
    info = {"set": feats_dir.name, "feats_dir": str(feats_dir), "frontend": frontend, "asr_model": asr_model, "num_utts": len(hyps),
            **timing, "enhance_xrt": timing["audio_s"] / max(timing["enhance_s"], 1e-9),
            "decode_xrt": timing["audio_s"] / max(timing["decode_s"], 1e-9),
            "wer": result.wer, "cer": result.cer}
    if runtimes != {"pytorch"}:  # the front-end's network ran in onnxruntime (--runtime onnx)
        info["runtime"] = "+".join(sorted(runtimes))
    spec = Path(str(frontend))
    if spec.suffix in (".yaml", ".yml") and spec.is_file():  # auto: its members (the report's oracle selection)
        import yaml

        var = yaml.safe_load(spec.read_text()) or {}
        members = var.get("members")
        if members:
            from specenh.frontends.spec import member_label

            info["members"] = [member_label(str(m)) for m in members]
            inf = var.get("inference") or {}
            if inf.get("margin") is not None:
                info["margin"] = float(inf["margin"])
            if inf.get("first_look") is not None:
                info["first_look"] = float(inf["first_look"])
                recs = [json.loads(ln) for ln in lines]  # the merged candidates log, as written above
                if recs:  # the share of utterances whose other candidates were not decoded
                    info["first_look_skipped"] = sum(1 for r in recs if None in r["conf"]) / len(recs)
    if choices:  # the share of utterances given to each candidate (auto's members, alpha values)
        labels = sorted(set(choices.values()))
        info["choices"] = {lab: sum(1 for v in choices.values() if v == lab) / len(choices) for lab in labels}
    cond = feats_dir / "condition.yaml"
    if cond.is_file():
        import yaml

        c = yaml.safe_load(cond.read_text()) or {}
        info["condition"] = c.get("name")
        if c.get("sweep"):  # a condition of a severity sweep: the report draws WER against its value
            info["sweep"] = c["sweep"]
    (out_dir / "decode_info.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("%s: WER %.2f%% CER %.2f%% (%d utts)", out_dir, 100 * result.wer, 100 * result.cer, len(hyps))
    return info
