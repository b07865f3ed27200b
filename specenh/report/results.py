"""Stage 6: RESULTS.md (conditions x front-ends: WER and CER with 95% CIs, paired bootstrap against
``identity``) and PNG plots, from the stage-5 decode dirs (``decode_info.json`` + ``scoring/``)."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from specenh.frontends.spec import BASELINE, REFERENCES
from specenh.metrics.textnorm import normalizer_info
from specenh.metrics.wer import load_scores, paired_bootstrap, score

log = logging.getLogger(__name__)


@dataclass
class Entry:
    set: str
    frontend: str
    dir: Path
    info: dict[str, Any]
    scores: dict[str, Any]


def collect(decode_dir: str | Path) -> list[Entry]:
    """Every finished decode (``<decode_dir>/*/decode_info.json``)."""
    out = []
    for info_path in sorted(Path(decode_dir).glob("*/decode_info.json")):
        info = json.loads(info_path.read_text())
        d = info_path.parent
        set_name = info.get("set", d.name)
        # stage 5 names decode dirs <set>_<front-end>; the front-end spec itself may be a path
        fe = d.name[len(set_name) + 1:] if d.name.startswith(set_name + "_") else str(info.get("frontend", ""))
        out.append(Entry(set=set_name, frontend=fe or d.name, dir=d, info=info,
                         scores=load_scores(d / "scoring")))
    return out


def _per_utt(entry: Entry, metric: str):
    """Per-utterance (errors, ref lengths) from the decode's hyp.jsonl (raw texts, rescored)."""
    refs, hyps = {}, {}
    for line in (entry.dir / "scoring" / "hyp.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        refs[r["utt_id"]], hyps[r["utt_id"]] = r["text"], r["pred_text"]
    res = score(refs, hyps, n_boot=0)
    counts = res.words if metric == "wer" else res.chars
    return res.utt_ids, counts.errors, counts.ref_lengths


def _fmt(s: dict[str, Any], metric: str) -> str:
    v, ci = 100 * s[metric], s.get(f"ci_{metric}")
    return f"{v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{v:.1f}"


def _git_hash(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001 - not a git checkout
        return "unknown"


def _worse(t: dict) -> bool:
    """Significantly worse: under 5% of paired resamples have the front-end at least as good (ties, such as a
    front-end that leaves the input unchanged, are not worse)."""
    return t.get("p_worse", 1.0 - t["p_value"]) < 0.05


def _condition_of(set_name: str, test_sets: list[str]) -> str:
    for t in sorted(test_sets, key=len, reverse=True):
        if set_name == t:
            return "clean"
        if set_name.startswith(t + "_"):
            return set_name[len(t) + 1:]
    return set_name


def _snr_of(entry: Entry) -> tuple[float, str] | None:
    """(SNR in dB, noise family) of a set degraded by one noise step at one SNR; the family is the step's
    ``source`` (a list joined with "+"), so pink-mix, white and babble sets are never one line."""
    cond = Path(entry.info.get("feats_dir", "")) / "condition.yaml"
    if not cond.is_file():
        return None
    c = yaml.safe_load(cond.read_text())
    for st in c.get("steps", []) or []:
        if st.get("type") == "noise" and isinstance(st.get("snr"), list) and len(st["snr"]) == 1:
            src = st.get("source", "")
            return float(st["snr"][0]), "+".join(map(str, src)) if isinstance(src, list) else str(src)
    return None


def paired_tests(entries: list[Entry], baseline: str = BASELINE, metric: str = "wer",
                 n_boot: int = 1000) -> dict[tuple[str, str], dict[str, Any]]:
    """(set, front-end) -> paired bootstrap of the front-end against ``baseline`` on that set."""
    by = {(e.set, e.frontend): e for e in entries}
    out = {}
    for (s, fe), e in by.items():
        if fe == baseline or (s, baseline) not in by:
            continue
        ua, ea, la = _per_utt(by[(s, baseline)], metric)
        ub, eb, _ = _per_utt(e, metric)
        if ua != ub:
            log.warning("%s: %s and %s decoded different utterances; no paired test", s, baseline, fe)
            continue
        out[(s, fe)] = paired_bootstrap(ea, eb, la, n_boot=n_boot)
    return out


def _variants(fes: list[str]) -> dict[str, str]:
    """Ablation variant -> its base: ``stylegan_nocx`` is a variant of ``stylegan`` when both are listed."""
    out = {}
    for f in fes:
        bases = [g for g in fes if g != f and f.startswith(g + "_")]
        if bases:
            out[f] = max(bases, key=len)
    return out


def _mean_cell(by: dict, sets: list[str], fe: str, metric: str) -> str:
    vals = [by[(s, fe)].scores[metric] for s in sets if (s, fe) in by]
    if not vals or len(vals) < len(sets):
        return "–"
    return f"{100 * sum(vals) / len(vals):.1f}"


def _summary_section(by: dict, tests: dict, fes: list[str], sets: list[str], degraded: list[str],
                     test_sets: list[str]) -> list[str]:
    """Who wins where, written from the numbers (so it is true of whatever run made them): per condition
    the front-end with the lowest WER (oracle excluded) and whether it beats identity significantly
    (paired bootstrap p < 0.05); per front-end the conditions where it helps or hurts significantly."""
    cands = [f for f in fes if f not in REFERENCES]
    if not cands:
        return []
    lines = ["## Who wins where", "",
             "Written by the report from the tables above (significant: paired bootstrap p < 0.05 for "
             "better; for worse, p_worse < 0.05: under 5% of resamples have the front-end at least as good, so ties are not worse).", ""]
    for s in sets:
        have = [f for f in cands if (s, f) in by]
        if not have or (s, BASELINE) not in by:
            continue
        best = min(have, key=lambda f: by[(s, f)].scores["wer"])
        t = tests.get((s, best))
        w_id, w_b = 100 * by[(s, BASELINE)].scores["wer"], 100 * by[(s, best)].scores["wer"]
        if t and t["p_value"] < 0.05:
            verdict = f"**{best}** helps: {w_id:.1f} -> {w_b:.1f}% WER (p {t['p_value']:.3f})"
        elif w_b < w_id:
            verdict = f"nothing helps significantly (best: {best}, {w_id:.1f} -> {w_b:.1f}%)"
        else:
            verdict = f"nothing beats the unprocessed input ({w_id:.1f}%; best front-end {best}, {w_b:.1f}%)"
        lines.append(f"- {_condition_of(s, test_sets)}: {verdict}")
    lines.append("")
    for f in cands:
        better = [_condition_of(s, test_sets) for s in degraded if (s, f) in tests and tests[(s, f)]["p_value"] < 0.05]
        worse = [_condition_of(s, test_sets) for s in sets if (s, f) in tests and _worse(tests[(s, f)])]
        n = sum((s, f) in tests for s in degraded)  # the degraded conditions decoded with f
        lines.append(f"- `{f}`: significantly better than identity on {len(better)} of {n} degraded "
                     f"conditions{(' (' + ', '.join(better) + ')') if better else ''}; significantly worse on "
                     f"{len(worse)}{(' (' + ', '.join(worse) + ')') if worse else ''}.")
    return lines + [""]


_SIGNAL = (("pesq", "PESQ", 2), ("stoi", "STOI", 3), ("estoi", "ESTOI", 3), ("si_sdr", "SI-SDR (dB)", 1),
           ("lsd", "LSD (dB)", 2))


def _resynth_summaries(resynth_dir: Path) -> list[dict[str, Any]]:
    """Stage 7's ``<resynth_dir>/<set>_<front-end>/summary.json``, each with ``frontend`` set to the
    recipe's front-end name (the dir name's tail: the spec itself may be a path)."""
    summaries = []
    for p in sorted(Path(resynth_dir).glob("*/summary.json")):
        sm = json.loads(p.read_text())
        name = p.parent.name  # stage 7 names its dirs <set>_<front-end>; the spec may be a path
        sm["frontend"] = name[len(sm["set"]) + 1:] if name.startswith(sm["set"] + "_") else sm["frontend"]
        sm["dir"] = str(p.parent)
        summaries.append(sm)
    return summaries


def _judge_wer(sm: dict[str, Any], system: str) -> float | None:
    j = (sm.get("judge") or {}).get("systems", {}).get(system)
    return None if j is None else j["wer"]


def _signal_section(resynth_dir: Path) -> list[str]:
    """Signal-metric summary of stage 7 (``<resynth_dir>/<set>_<front-end>/summary.json``), with the
    Whisper judge's WER in a last column when stage 7 ran it."""
    summaries = _resynth_summaries(resynth_dir)
    if not summaries:
        return []
    judged = any(sm.get("judge") for sm in summaries)
    n = summaries[0].get("num_utts")
    lines = ["## Signal metrics (stage 7)", "",
             f"Means over the first {n} utterances of each set, against the clean reference at the input's "
             "level. Each cell: the system's value and, in parentheses, the paired change over the unprocessed "
             "input (LSD: lower is better). Log-mel front-ends are resynthesised with the vocoder (FGLA), so "
             "their rows also give `input_resynth` (the degraded features through the same vocoder) and "
             "`clean_resynth` (the vocoder's ceiling): compare them with those, not with the waveform systems, "
             "whose noisy phase is kept; SI-SDR of resynthesised audio is meaningless (new phase)."
             + (" *Whisper WER*: the independent judge's WER (%) of the same audio, change over the unprocessed "
                "input in points (see the Whisper table)." if judged else ""), "",
             "| set | front-end | domain | " + " | ".join(h for _, h, _ in _SIGNAL) + (" | Whisper WER" if judged else "")
             + " |", "|---|---|---|" + "---|" * (len(_SIGNAL) + judged)]
    for sm in summaries:
        m, d = sm["metrics"]["enhanced"], sm.get("delta_vs_input", {})
        cells = []
        for k, _, nd in _SIGNAL:
            v, dv = m.get(k, {}).get("mean"), d.get(k, {}).get("mean")
            cells.append("–" if v is None else (f"{v:.{nd}f}" + (f" ({dv:+.{nd}f})" if dv is not None else "")))
        if judged:
            w, w0 = _judge_wer(sm, "enhanced"), _judge_wer(sm, "input")
            cells.append("–" if w is None else f"{100 * w:.1f}" + (f" ({100 * (w - w0):+.1f})" if w0 is not None else ""))
        lines.append(f"| {sm['set']} | {sm['frontend']} | {sm['domain']} | " + " | ".join(cells) + " |")
        for ref in ("input_resynth", "clean_resynth"):
            if ref in sm["metrics"]:
                r = sm["metrics"][ref]
                cells = ["–" if r.get(k, {}).get("mean") is None else f"{r[k]['mean']:.{nd}f}" for k, _, nd in _SIGNAL]
                if judged:
                    w = _judge_wer(sm, ref)
                    cells.append("–" if w is None else f"{100 * w:.1f}")
                lines.append(f"| {sm['set']} | ↳ {ref} | logmel | " + " | ".join(cells) + " |")
    panels = sorted(resynth_dir.glob("panel_*.png"))
    lines += ["", "Audio examples (clean / degraded / enhanced wavs): `" + f"{resynth_dir}/<set>_<front-end>/wav/`. "
              "Spectrogram panels, one per condition (clean / degraded / each front-end): "
              + (", ".join(f"`{p}`" for p in panels) if panels else "none yet") + ".", ""]
    return lines


def _ci_cell(j: dict[str, Any] | None) -> str:
    if not j:
        return "–"
    ci = j.get("ci_wer")
    return f"{100 * j['wer']:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * j['wer']:.1f}"


def _judge_section(resynth_dir: Path, test_sets: list[str], frontend_order: list[str] | None = None) -> list[str]:
    """The Whisper judge's table (stage 7 with ``--judge-model``): per condition, WER with 95% CIs of the
    unprocessed degraded audio, the vocoder control, each front-end's output and the clean references;
    then the paired bootstrap of each front-end against the input and against the vocoder control."""
    summaries = [sm for sm in _resynth_summaries(resynth_dir) if sm.get("judge")]
    if not summaries:
        return []
    sets = sorted({sm["set"] for sm in summaries}, key=lambda s: (_condition_of(s, test_sets) != "clean", s))
    fes = list(dict.fromkeys((frontend_order or []) + [sm["frontend"] for sm in summaries]))
    fes = [f for f in fes if any(sm["frontend"] == f for sm in summaries)]
    by = {(sm["set"], sm["frontend"]): sm for sm in summaries}

    def ref_cell(s: str, system: str) -> str:  # the same audio whichever front-end's dir holds it
        for f in fes:
            j = (by.get((s, f)) or {}).get("judge", {}).get("systems", {}).get(system)
            if j:
                return _ci_cell(j)
        return "–"

    info = summaries[0]["judge"]["info"]
    dec = info.get("decode", {})
    per_utt = [sm["judge"]["info"].get("s_per_utt") for sm in summaries if sm["judge"]["info"].get("s_per_utt")]
    cpu_utt = [sm["judge"]["info"].get("cpu_s_per_utt") for sm in summaries if sm["judge"]["info"].get("cpu_s_per_utt")]
    n = summaries[0].get("num_utts")
    ref_text = Path(summaries[0]["dir"]) / "judge" / "input" / "ref.text"
    ids = [ln.split(maxsplit=1)[0] for ln in ref_text.read_text(encoding="utf-8").splitlines()] if ref_text.is_file() else []
    span = f" ({ids[0]} ... {ids[-1]})" if ids else ""
    lines = ["## Whisper judge: WER (%) with 95% bootstrap CI (stage 7)", "",
             f"An independent judge: the pretrained Whisper `{info.get('model')}` ({info.get('engine')}, "
             f"{info.get('compute_type')}; greedy: beam {dec.get('beam_size')}, temperature {dec.get('temperature')}, "
             f"language {dec.get('language')}, no previous-text conditioning) transcribes the audio of the first {n} "
             f"utterances of each set{span}. *degraded*: the unprocessed input; *vocoder control*: the degraded log-mel "
             "through the same vocoder as the log-mel front-ends (judge those against it); *clean resynth*: the "
             "clean log-mel through the vocoder (its ceiling); *clean*: the clean audio (the judge's floor). "
             f"Text normaliser `{info.get('normalizer', {}).get('name')}` v{info.get('normalizer', {}).get('version')}"
             f": {info.get('normalizer', {}).get('description')}."
             + (f" Judge time: {min(per_utt):.2f}-{max(per_utt):.2f} s per utterance (wall"
                + (f"; CPU {min(cpu_utt):.2f}-{max(cpu_utt):.2f} s" if cpu_utt else "")
                + f"; {info.get('num_threads')} thread(s), {info.get('device')})." if per_utt else ""), "",
             "| set | condition | degraded | vocoder control | " + " | ".join(f"`{f}`" for f in fes)
             + " | clean resynth | clean |", "|---|---|---|---|" + "---|" * len(fes) + "---|---|"]
    for s in sets:
        cells = [ref_cell(s, "input"), ref_cell(s, "input_resynth")]
        cells += [_ci_cell((by.get((s, f)) or {}).get("judge", {}).get("systems", {}).get("enhanced")) for f in fes]
        cells += [ref_cell(s, "clean_resynth"), ref_cell(s, "clean")]
        lines.append(f"| {s} | {_condition_of(s, test_sets)} | " + " | ".join(cells) + " |")
    lines += ["", "Paired bootstrap (1000 utterance resamples) of each front-end's Whisper WER: delta in points "
              "(> 0: the front-end's audio is better understood) and p, the fraction of resamples in which it is "
              "not better; against the degraded input and, for log-mel front-ends, against the vocoder control.", "",
              "| set | front-end | vs degraded | vs vocoder control |", "|---|---|---|---|"]
    for s in sets:
        for f in fes:
            sm = by.get((s, f))
            if not sm:
                continue
            pr = sm["judge"].get("paired", {})
            cells = [f"{100 * t['delta']:+.1f} (p {t['p_value']:.3f})" if t else "–"
                     for t in (pr.get("enhanced_vs_input"), pr.get("enhanced_vs_input_resynth"))]
            lines.append(f"| {s} | `{f}` | " + " | ".join(cells) + " |")
    lines += ["", f"Whisper hypotheses and alignments: `{resynth_dir}/<set>_<front-end>/judge/<system>/result.txt`.", ""]
    return lines


def _insertion_section(by: dict, sets: list[str], fes: list[str], test_sets: list[str]) -> list[str]:
    """Insertions per reference word (%): a front-end that invents words shows it here, not only in WER."""
    lines = ["## Insertion rate (% of reference words)", "",
             "| set | condition | " + " | ".join(fes) + " |", "|---|---|" + "---|" * len(fes)]
    for s in sets:
        cells = []
        for f in fes:
            sc = by[(s, f)].scores if (s, f) in by else None
            n = sc.get("num_ref_words") if sc else None
            cells.append(f"{100 * sc['insertions'] / n:.1f}" if sc and n and "insertions" in sc else "–")
        lines.append(f"| {s} | {_condition_of(s, test_sets)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _oracle_selection(by: dict, s: str, members: list[str]) -> float | None:
    """WER when each utterance takes the member with the fewest errors (needs every member's decode)."""
    if not members or any((s, m) not in by for m in members):
        return None
    per = [_per_utt(by[(s, m)], "wer") for m in members]
    ids = per[0][0]
    if any(list(p[0]) != list(ids) for p in per):
        return None
    errs = [min(int(p[1][i]) for p in per) for i in range(len(ids))]
    ref = sum(int(x) for x in per[0][2])
    return sum(errs) / max(ref, 1)


def _pseudo_reference_lines(data_root: str | Path | None) -> list[str]:
    """Where transcripts are pseudo-references (a data dir with ``text.source``), say so and what they served."""
    if data_root is None or not Path(data_root).is_dir():
        return []
    found = sorted(d for d in Path(data_root).iterdir() if (d / "text.source").is_file())
    if not found:
        return []
    lines = ["- **Pseudo-references**: the `text` of these data dirs is not a human transcript: "
             + "; ".join(f"`{d.name}`: {(d / 'text.source').read_text(encoding='utf-8').strip()}" for d in found)
             + ". They serve front-end training/validation only (e.g. choosing `auto`'s margin on the validation "
             "subset); a validation WER against them measures agreement with the ASR's output on the clean clip. "
             "Every test-set WER above is against the corpus's own transcripts.", ""]
    return lines


def drop_empty_sections(lines: list[str]) -> list[str]:
    """The report's lines without a ``## `` heading that has nothing but blank lines before the next heading
    (or the end): a section is printed with its content or not at all."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("## "):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("#"):
                j += 1
            if not any(ln.strip() for ln in lines[i + 1:j]):
                log.warning("report: section %r has no content; left out", lines[i])
                i = j
                continue
        out.append(lines[i])
        i += 1
    return out


def _selection_section(by: dict, sets: list[str], fes: list[str]) -> list[str]:
    """Front-ends that choose per utterance (auto, alpha grids): WER, the oracle selection's WER (each
    utterance's best member, by its errors: the bound of any selector) and the share of each candidate."""
    choosers = [f for f in fes if any((s, f) in by and by[(s, f)].info.get("choices") for s in sets)]
    lines: list[str] = []
    for f in choosers:
        members = next((by[(s, f)].info.get("members") for s in sets if (s, f) in by
                        and by[(s, f)].info.get("members")), None) or []
        labels = sorted({lab for s in sets if (s, f) in by for lab in (by[(s, f)].info.get("choices") or {})})
        margin = next((by[(s, f)].info["margin"] for s in sets if (s, f) in by
                       and by[(s, f)].info.get("margin") is not None), None)
        rule = ("Each utterance keeps the candidate the frozen ASR is the most confident about (no transcript; CTC: "
                "the mean top posterior, Whisper: the mean token probability)")
        if margin:
            rule += (f", unless it beats the first member (`{members[0] if members else 'candidate 0'}`) by "
                     f"{margin:g} or less: then the first member is kept (margin chosen on the validation "
                     "subset by stage 4, `specenh tune-auto`)")
        rule += "."
        rows = []
        for s in sets:
            if (s, f) not in by or not by[(s, f)].info.get("choices"):
                continue
            e = by[(s, f)]
            orc = _oracle_selection(by, s, members)
            ch = e.info.get("choices") or {}
            rows.append(f"| {s} | {100 * e.scores['wer']:.1f} | " + ("–" if orc is None else f"{100 * orc:.1f}")
                        + " | " + " | ".join(f"{100 * ch.get(lab, 0.0):.0f}%" for lab in labels) + " |")
        if not rows or not labels:  # never a heading without a table
            continue
        lines += [f"## Per-utterance choice of `{f}` by the frozen ASR's confidence", "",
                  rule + " *Oracle selection*: each utterance takes the member with the fewest word errors (uses the "
                  "transcripts: the bound of any selector among these members)." if members else rule,
                  "", "| set | WER | oracle selection | " + " | ".join(f"share {lab}" for lab in labels) + " |",
                  "|---|---|---|" + "---|" * len(labels)] + rows + [""]
    return lines


def _sweep_section(by: dict, tests: dict, sweep_sets: list[str], fes: list[str]) -> list[str]:
    """WER with CI and the paired change against identity for each severity-sweep set (one row per swept
    value, in sweep order); front-ends not decoded on any sweep set are left out."""
    cols = [f for f in fes if any((s, f) in by for s in sweep_sets)]
    if not sweep_sets or not cols:
        return []
    lines = ["## Severity sweeps: WER (%) with 95% bootstrap CI", "",
             "One condition per swept value (`--sweeps`; plots `wer_sweep_<sweep>.png` below). Each cell: WER [CI] "
             "and, for front-ends other than identity, the paired change against identity in points (> 0: helps) "
             "with its one-sided p. Not part of the means above.", "",
             "| set | sweep | value | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for s in sweep_sets:
        sw = next(by[(s, f)].info["sweep"] for f in cols if (s, f) in by and by[(s, f)].info.get("sweep"))
        cells = []
        for f in cols:
            if (s, f) not in by:
                cells.append("–")
                continue
            t = tests.get((s, f))
            cells.append(_fmt(by[(s, f)].scores, "wer")
                         + (f" ({100 * t['delta']:+.1f}, p {t['p_value']:.3f})" if t else ""))
        lines.append(f"| {s} | {sw['name']} | {sw['value']} | " + " | ".join(cells) + " |")
    return lines + [""]


def _train_info(exp_dir: Path, frontend: str) -> dict:
    p = exp_dir / f"frontend_{frontend}" / "train_info.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _training_section(exp_dir: Path, fes: list[str]) -> list[str]:
    """One row per trained front-end: the step budget and what was done (budgets are steps, never time)."""
    rows = []
    for f in fes:
        ti = _train_info(exp_dir, f)
        if not ti:
            continue
        sel = ti.get("selected")
        sel = f"step {sel['step']} ({sel['by']})" if isinstance(sel, dict) else str(sel or "last")
        status = f"**TRUNCATED** (max_minutes {ti.get('max_minutes')})" if ti.get("truncated") else "complete"
        rows.append(f"| {f} | {ti.get('steps', '?')} / {ti.get('max_steps', '?')} | {ti.get('seed', '?')} | "
                    f"{ti.get('num_threads', '?')} | {sel} | {status} |")
    if not rows:
        return []
    return ["## Trained front-ends", "",
            "Budgets are optimizer steps (a result depends only on commit, config and seed); `model.pt` holds the "
            "selected step's weights. A run stopped by the off-by-default `max_minutes` safety cap is TRUNCATED.", "",
            "| front-end | steps / budget | seed | threads | model.pt | status |", "|---|---|---|---|---|---|",
            *rows, ""]


COMMANDS_PER_STAGE = "Commands (from the recipe directory; the last run of each stage, from `exp/run.stage<N>.sh`):"
COMMANDS_HISTORY = ("Commands (from the recipe directory; every invocation that made these outputs, in order, from "
                    "`exp/run.history`; steps already done are skipped, so each line redoes only what changed):")


def write_report(decode_dir: str | Path, out_md: str | Path, *, test_sets: list[str], plots_dir: str | Path | None = None,
                 asr_dir: str | Path | None = None, commands: list[str] | None = None, title: str = "Results",
                 frontend_order: list[str] | None = None, resynth_dir: str | Path | None = None,
                 history: bool = False, data_root: str | Path | None = None) -> Path:
    """RESULTS.md from the decodes under ``decode_dir``. ``commands``: the recipe commands to list (``history``:
    they are every invocation in order, else the last run of each stage). ``data_root``: the recipe's data dirs;
    those whose ``text`` holds pseudo-references (a ``text.source`` file) are named in the report.

    Sections in order: header and frozen ASR, listening page, trained front-ends, WER/CER tables, ablation
    tables, insertions, selection, sweeps, paired tests, summary, stage-7 sections, method, commands, plots."""
    entries = collect(decode_dir)
    if not entries:
        if resynth_dir is not None and _resynth_summaries(Path(resynth_dir)):
            return _write_stage7_report(decode_dir, out_md, test_sets=test_sets, plots_dir=plots_dir,
                                        commands=commands, title=title, frontend_order=frontend_order,
                                        resynth_dir=Path(resynth_dir))
        raise RuntimeError(f"no finished decodes under {decode_dir} (run stage 5 first)")
    exp_dir = Path(decode_dir).parent
    fes = list(dict.fromkeys((frontend_order or []) + sorted({e.frontend for e in entries})))
    fes = [f for f in fes if any(e.frontend == f for e in entries)]
    # severity-sweep sets have their own table and plot; the main tables, means and counts are over the others
    sweep_sets = sorted({e.set for e in entries if e.info.get("sweep")},
                        key=lambda s: next((e.info["sweep"]["name"], float(e.info["sweep"]["value"]))
                                           for e in entries if e.set == s and e.info.get("sweep")))
    sets = sorted({e.set for e in entries} - set(sweep_sets),
                  key=lambda s: (_condition_of(s, test_sets) != "clean", s))
    by = {(e.set, e.frontend): e for e in entries}
    tests = paired_tests(entries)
    base_of = _variants(fes)
    main = [f for f in fes if f not in base_of]
    degraded = [s for s in sets if _condition_of(s, test_sets) != "clean"]
    truncated = {f for f in fes if _train_info(exp_dir, f).get("truncated")}
    lines = _header_lines(title, out_md) + _frozen_asr_lines(asr_dir, entries)
    if resynth_dir is not None and plots_dir:
        lines += _listening_lines(exp_dir, Path(plots_dir), fes, title)
    lines += _training_section(exp_dir, fes)
    lines += _score_tables(by, sets, main, degraded, test_sets, truncated)
    lines += _ablation_tables(by, sets, base_of, degraded)
    lines += _insertion_section(by, sets, main, test_sets)
    lines += _selection_section(by, sets, fes)
    lines += _sweep_section(by, tests, sweep_sets, main)
    if tests:
        lines += _paired_section(tests, sets, fes, degraded)
        lines += _summary_section(by, tests, main, sets, degraded, test_sets)
    if resynth_dir is not None:
        lines += _judge_section(Path(resynth_dir), test_sets, fes)
        lines += _signal_section(Path(resynth_dir))
    lines += _method_lines(entries) + _pseudo_reference_lines(data_root)
    if commands:
        lines += [COMMANDS_HISTORY if history else COMMANDS_PER_STAGE, "", "```bash", *commands, "```", ""]
    if plots_dir:
        pngs = make_plots(entries, main, sets, test_sets, Path(plots_dir), sweep_sets=sweep_sets)
        if pngs:
            lines += ["Plots: " + ", ".join(f"[{Path(p).name}]({p})" for p in pngs), ""]
    Path(out_md).write_text("\n".join(drop_empty_sections(lines)), encoding="utf-8")
    log.info("wrote %s (%d decodes)", out_md, len(entries))
    return Path(out_md)


def _header_lines(title: str, out_md: str | Path) -> list[str]:
    """The title and where the report was made (date, git commit, machine)."""
    return [f"# {title}", "",
            f"Generated by `specenh report` on {_dt.date.today().isoformat()} at git "
            f"`{_git_hash(Path(out_md).resolve().parent)}` ({platform.machine()}, {platform.system()}).", ""]


def _frozen_asr_lines(asr_dir: str | Path | None, entries: list[Any]) -> list[str]:
    """The frozen ASR: the stage-3 reference model's training facts, else the pretrained model names."""
    if asr_dir and (Path(asr_dir) / "train_info.json").is_file():
        ti = json.loads((Path(asr_dir) / "train_info.json").read_text())
        trunc = (f" **TRUNCATED by the max_minutes safety cap at step {ti['steps']} of {ti['max_steps']}**"
                 if ti.get("truncated") else "")
        return [f"**Frozen ASR**: reference Conformer-CTC trained by stage 3 ({ti['params'] / 1e6:.2f} M parameters, "
                f"{ti['steps']} steps ({ti.get('epochs', '?')} epochs, seed {ti.get('seed', '?')}) on "
                f"{ti['train_hours']:.2f} h of clean speech, dev WER {100 * ti.get('val_wer', float('nan')):.1f}%)"
                f"{trunc}; never trained on degraded speech.", ""]
    asr_names = sorted({str(e.info.get("asr_model", "")) for e in entries})
    return [f"**Frozen ASR**: {', '.join(asr_names)}", ""]


def _listening_lines(exp_dir: Path, plots_dir: Path, fes: list[str], title: str) -> list[str]:
    """Writes stage 7's listening page and returns the line that links it (none when there is no page)."""
    from specenh.report.listen import write_listening_page

    page = write_listening_page(exp_dir, plots_dir / "index.html", fes, title=f"{title}: listening report")
    if page is None:
        return []
    return [f"**Listen and look** before trusting the tables: [{page}]({page}) (audio of stage 7's example "
            "utterances per condition and front-end, spectrogram panels, hypotheses with errors marked; "
            "opens from disk).", ""]


def _score_tables(by: Mapping[tuple[str, str], Any], sets: list[str], main: list[str], degraded: list[str],
                  test_sets: list[str], truncated: set[str]) -> list[str]:
    """The WER and CER tables (one column per front-end that is not a variant) with the mean-of-degraded row."""
    lines: list[str] = []
    for metric, name in (("wer", "WER"), ("cer", "CER")):
        lines += [f"## {name} (%) with 95% bootstrap CI", "",
                  "| set | condition | " + " | ".join(f + (" (TRUNCATED)" if f in truncated else "") for f in main)
                  + " |", "|---|---|" + "---|" * len(main)]
        for s in sets:
            cells = [_fmt(by[(s, f)].scores, metric) if (s, f) in by else "–" for f in main]
            lines.append(f"| {s} | {_condition_of(s, test_sets)} | " + " | ".join(cells) + " |")
        lines.append(f"| **mean of degraded** | {len(degraded)} conditions | "
                     + " | ".join(_mean_cell(by, degraded, f, metric) for f in main) + " |")
        lines.append("")
    return lines


def _ablation_tables(by: Mapping[tuple[str, str], Any], sets: list[str], base_of: Mapping[str, str],
                     degraded: list[str]) -> list[str]:
    """One WER table per front-end that has variants: the base and its variants side by side."""
    lines: list[str] = []
    for base in dict.fromkeys(base_of.values()):
        cols = [base] + [f for f, b in base_of.items() if b == base]
        lines += [f"## Ablations of `{base}`: WER (%) with 95% bootstrap CI", "",
                  "Variants are configs `conf/frontend/<name>.yaml` (trained alike) or inference variants of the "
                  "trained model (a `checkpoint:` and other inference options).", "",
                  "| set | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for s in sets:
            lines.append(f"| {s} | " + " | ".join(_fmt(by[(s, f)].scores, "wer") if (s, f) in by else "–"
                                                  for f in cols) + " |")
        lines.append(f"| **mean of degraded** | " + " | ".join(_mean_cell(by, degraded, f, "wer") for f in cols) + " |")
        lines.append("")
    return lines


def _paired_section(tests: Mapping[tuple[str, str], Mapping[str, Any]], sets: list[str], fes: list[str],
                    degraded: list[str]) -> list[str]:
    """Paired bootstrap of every front-end against identity per set, and the mean relative reduction."""
    others = [f for f in fes if f != BASELINE and any((s, f) in tests for s in sets)]
    lines = ["## Paired bootstrap against `identity` (WER)", "",
             "Each cell: delta = WER(identity) − WER(front-end) in points (> 0: the front-end helps) and p, the "
             "fraction of 1000 paired utterance resamples in which the front-end is not better (one-sided; "
             "p ≈ 1 means it is worse). The last row is the mean relative WER reduction over the degraded "
             "conditions.", "",
             "| set | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for s in sets:
        cells = []
        for f in others:
            t = tests.get((s, f))
            cells.append(f"{100 * t['delta']:+.1f} (p {t['p_value']:.3f})" if t else "–")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    rel = []
    for f in others:
        r = [tests[(s, f)]["relative_improvement"] for s in degraded
             if (s, f) in tests and tests[(s, f)]["relative_improvement"] is not None]
        # like the mean WER row: a front-end decoded on only some conditions gets no mean
        rel.append(f"{100 * sum(r) / len(r):+.1f}%" if r and len(r) == len(degraded) else "–")
    return lines + ["| **mean relative reduction (degraded)** | " + " | ".join(rel) + " |", ""]


def _method_lines(entries: list[Any]) -> list[str]:
    """How the numbers were made: the text normaliser, the CER convention, the bootstrap."""
    ni = normalizer_info()
    return ["## How these numbers were made", "",
            f"- Text normaliser `{ni.get('name', 'specenh')}` v{ni.get('version')}: {ni.get('description')}",
            f"- {entries[0].scores.get('cer_convention', '')}",
            f"- Confidence intervals: {entries[0].scores.get('bootstrap', {}).get('method', '')}", ""]


def _write_stage7_report(decode_dir: str | Path, out_md: str | Path, *, test_sets: list[str],
                         plots_dir: str | Path | None, commands: list[str] | None, title: str,
                         frontend_order: list[str] | None, resynth_dir: Path) -> Path:
    """The report of a run without stage-5 decodes (e.g. real speech judged by Whisper alone): the
    listening page, the Whisper table and the signal metrics of stage 7, and the commands."""
    fes = list(dict.fromkeys((frontend_order or []) + [sm["frontend"] for sm in _resynth_summaries(resynth_dir)]))
    lines = [f"# {title}", "",
             f"Generated by `specenh report` on {_dt.date.today().isoformat()} at git `{_git_hash(Path(out_md).resolve().parent)}` "
             f"({platform.machine()}, {platform.system()}). No stage-5 decodes (no frozen-ASR tables): the tables "
             "below are stage 7's.", ""]
    if plots_dir:
        from specenh.report.listen import write_listening_page

        page = write_listening_page(Path(decode_dir).parent, Path(plots_dir) / "index.html", fes,
                                    title=f"{title}: listening report")
        if page is not None:
            lines += [f"**Listen and look**: [{page}]({page}) (audio of stage 7's example utterances per condition "
                      "and front-end, spectrogram panels; opens from disk).", ""]
    lines += _judge_section(resynth_dir, test_sets, fes)
    lines += _signal_section(resynth_dir)
    if commands:
        lines += ["Commands (from the recipe directory; the last run of each stage, from `exp/run.stage<N>.sh`):",
                  "", "```bash", *commands, "```", ""]
    Path(out_md).write_text("\n".join(lines), encoding="utf-8")
    log.info("wrote %s (stage 7 only)", out_md)
    return Path(out_md)


def make_plots(entries: list[Entry], fes: list[str], sets: list[str], test_sets: list[str], out: Path,
               sweep_sets: list[str] | None = None) -> list[Path]:
    """WER per condition (grouped bars per front-end) and WER against SNR for the noise conditions (``sets``;
    the ``sweep_sets`` get their own plots, :func:`sweep_plots`)."""
    sweep_entries = entries
    entries = [e for e in entries if e.set not in set(sweep_sets or [])]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    by = {(e.set, e.frontend): e for e in entries}
    paths = []
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(sets) * max(1, len(fes)) / 2), 4))
    w = 0.8 / max(1, len(fes))
    for i, f in enumerate(fes):
        vals = [100 * by[(s, f)].scores["wer"] if (s, f) in by else np.nan for s in sets]
        lo = [100 * (by[(s, f)].scores["wer"] - by[(s, f)].scores["ci_wer"][0]) if (s, f) in by and by[(s, f)].scores.get("ci_wer") else 0 for s in sets]
        hi = [100 * (by[(s, f)].scores["ci_wer"][1] - by[(s, f)].scores["wer"]) if (s, f) in by and by[(s, f)].scores.get("ci_wer") else 0 for s in sets]
        ax.bar(np.arange(len(sets)) + i * w, vals, w, yerr=[lo, hi], label=f, capsize=2)
    ax.set_xticks(np.arange(len(sets)) + 0.4 - w / 2)
    ax.set_xticklabels([_condition_of(s, test_sets) for s in sets], rotation=45, ha="right")
    ax.set_ylabel("WER (%)")
    ax.legend()
    fig.tight_layout()
    p = out / "wer_per_condition.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    snr_pts: dict[tuple[str, str], list[tuple[float, float]]] = {}  # (front-end, noise family) -> points
    for e in entries:
        snr_fam = _snr_of(e)
        if snr_fam is not None:
            snr_pts.setdefault((e.frontend, snr_fam[1]), []).append((snr_fam[0], 100 * e.scores["wer"]))
    if snr_pts:
        fig, ax = plt.subplots(figsize=(6, 4))
        families = sorted({fam for _, fam in snr_pts})
        styles = ["-", "--", ":", "-."]
        markers = ["o", "s", "^", "D", "v"]
        colours = {f: f"C{i % 10}" for i, f in enumerate(fes)}
        for f in fes:
            for j, fam in enumerate(families):
                if (f, fam) in snr_pts:
                    pts = sorted(snr_pts[(f, fam)])
                    ax.plot([a for a, _ in pts], [b for _, b in pts], color=colours[f], linestyle=styles[j % 4],
                            marker=markers[j % 5], label=f"{f}, {fam}" if len(families) > 1 else f)
        ax.set_title("one line per front-end and noise family", fontsize=9)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("WER (%)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / "wer_per_snr.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    paths += sweep_plots(sweep_entries, fes, out)
    return paths


def sweep_plots(entries: list[Entry], fes: list[str], out: Path) -> list[Path]:
    """One PNG per severity sweep (``decode_info.json``'s ``sweep``): WER against the swept value, a line per
    front-end with its 95% bootstrap CI as a band. ``out/wer_sweep_<sweep>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, dict[str, list]] = {}
    meta: dict[str, dict] = {}
    for e in entries:
        sw = e.info.get("sweep")
        if not sw or e.frontend not in fes:
            continue
        ci = e.scores.get("ci_wer") or [e.scores["wer"], e.scores["wer"]]
        groups.setdefault(sw["name"], {}).setdefault(e.frontend, []).append(
            (float(sw["value"]), 100 * e.scores["wer"], 100 * ci[0], 100 * ci[1]))
        meta[sw["name"]] = sw
    paths = []
    for name, by_fe in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for f in fes:
            if f not in by_fe:
                continue
            pts = sorted(by_fe[f])
            xs = [p[0] for p in pts]
            line, = ax.plot(xs, [p[1] for p in pts], marker="o", label=f)
            ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=line.get_color(), alpha=0.15)
        sw = meta[name]
        ax.set_xlabel(f"{sw['param']}" + (f" ({sw['unit']})" if sw.get("unit") else ""))
        ax.set_ylabel("WER (%)")
        ax.set_title(f"severity sweep {name} (95% bootstrap CI bands)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / f"wer_sweep_{name}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
