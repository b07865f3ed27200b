"""Choosing ``auto``'s selection margin on validation sets, from one decode of every candidate.

Stage 5 (and stage 4's validation decode) logs, per utterance, every candidate's label, confidence and
hypothesis (``candidates.jsonl`` in the decode dir). The word errors of each candidate are counted once;
the errors of the selection at any margin then follow without decoding again. The margin kept is the one
with the lowest mean WER over the validation sets **among the margins that are worse than the fallback
(the first candidate, ``identity``) on none of them** (point estimates; margin 1 always keeps the fallback,
so there is always one); ties go to the larger margin, which changes less. Test sets are never read.

With ``tune: {harm_p: 0.05}`` "worse" means *significantly* worse: a paired bootstrap over the set's utterances
(1000 resamples, seed 0) finds the selection with more word errors than the fallback in more than 1 - harm_p of
them. Use it where the validation references are the fallback's own output on clean input (pseudo-references,
egs/realspeech): there the fallback scores 0% on the clean set by construction, and any change at all would
count as harm under the point rule.

    specenh tune-auto --config conf/frontend/auto.yaml --decode-dirs exp/frontend_auto/valid/* \\
        --out exp/frontend_auto/auto.yaml

The output is the config with ``inference: {margin: m}`` and a ``tuned:`` record (grid, per-set WERs, the
sets used), which stage 5 decodes with.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import yaml

from specenh.data.kaldi import read_kv
from specenh.frontends.auto import check_first_look, check_margin, first_look_threshold, select_by_confidence

#: the margins tried when the config's ``tune:`` block names none (confidence is a mean posterior)
DEFAULT_MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 1.0)


@dataclass
class SetCandidates:
    """One validation set: confidences ``conf [U, K]``, word errors ``errors [U, K]`` of K candidates
    for U utterances, reference lengths ``ref_len [U]`` and the candidate labels (``labels[0]``: fallback)."""

    name: str
    labels: list[str]
    conf: np.ndarray
    errors: np.ndarray
    ref_len: np.ndarray

    def selected_errors(self, margin: float, first_look: float | None = None) -> np.ndarray:
        """Word errors per utterance ``[U]`` of the selection at ``margin`` (and ``first_look``)."""
        pick = np.asarray(select_by_confidence(torch.from_numpy(self.conf.T.copy()), margin))
        pick[self.looked(margin, first_look)] = 0
        return self.errors[np.arange(len(pick)), pick]

    def looked(self, margin: float, first_look: float | None) -> np.ndarray:
        """``[U]`` bool: the utterances a first look keeps on the fallback without decoding the others."""
        thr = first_look_threshold(first_look, margin)
        return np.zeros(len(self.conf), dtype=bool) if thr is None else self.conf[:, 0] >= thr

    def wer(self, margin: float, first_look: float | None = None) -> float:
        """Corpus WER of the selection at ``margin`` (and ``first_look``)."""
        return float(self.selected_errors(margin, first_look).sum() / self.ref_len.sum())

    def harm_p(self, margin: float, n_boot: int = 1000, seed: int = 0) -> float:
        """Paired bootstrap: the fraction of utterance resamples in which the selection at ``margin`` has no more
        word errors than the fallback (small: significantly worse than the fallback)."""
        d = (self.selected_errors(margin) - self.errors[:, 0]).astype(np.int64)
        if not d.any():
            return 1.0
        idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
        return float((d[idx].sum(1) <= 0).mean())

    @property
    def fallback_wer(self) -> float:
        return float(self.errors[:, 0].sum() / self.ref_len.sum())

    def without(self, drop: Sequence[str]) -> "SetCandidates":
        """The set as if the candidates labelled ``drop`` had not been decoded (the fallback always stays)."""
        keep = [k for k, lab in enumerate(self.labels) if k == 0 or lab not in drop]
        return SetCandidates(self.name, [self.labels[k] for k in keep], self.conf[:, keep], self.errors[:, keep],
                             self.ref_len)


@dataclass
class TuneResult:
    margin: float
    margins: list[float]
    sets: list[str]
    fallback: str
    fallback_wer: dict[str, float]
    wer: dict[str, list[float]] = field(default_factory=dict)  # set -> WER per margin
    harm_p: float | None = None  # None: "worse" is the point estimate; else significantly worse at this level
    first_look: float | None = None  # the kept first-look threshold (None: not tuned, off)
    first_looks: list[float] = field(default_factory=list)  # its grid
    first_look_wer: dict[str, list[float]] = field(default_factory=dict)  # set -> WER per threshold (kept margin)
    first_look_skip: list[float] = field(default_factory=list)  # share of utterances not fully decoded, per threshold
    drop: list[str] = field(default_factory=list)  # candidates pruned (tune: {prune: tol}), in the order dropped
    prune_tol: float | None = None  # None: not pruned
    prune_path: list[tuple[str, float]] = field(default_factory=list)  # (candidate dropped next, mean WER without it)

    def mean_wer(self, i: int) -> float:
        return float(np.mean([self.wer[s][i] for s in self.sets]))

    def to_dict(self) -> dict:
        worse = "worse" if self.harm_p is None else f"significantly worse (paired bootstrap, p < {self.harm_p:g})"
        return {"margin": self.margin, "rule": f"lowest mean WER over the sets among margins {worse} than the "
                "fallback on none (ties: larger margin)", "fallback": self.fallback, "sets": self.sets,
                "margins": self.margins, "fallback_wer": {s: round(v, 5) for s, v in self.fallback_wer.items()},
                "wer": {s: [round(v, 5) for v in w] for s, w in self.wer.items()},
                "mean_wer": [round(self.mean_wer(i), 5) for i in range(len(self.margins))],
                **({"first_look": self.first_look, "first_look_rule": "the lowest threshold worse than decoding "
                    "every candidate on no set (at the kept margin)", "first_looks": self.first_looks,
                    "first_look_wer": {s: [round(v, 5) for v in w] for s, w in self.first_look_wer.items()},
                    "first_look_skip": [round(v, 4) for v in self.first_look_skip]} if self.first_looks else {}),
                **({"drop": self.drop, "prune_tol": self.prune_tol, "prune_rule": "drop, one at a time, the candidate "
                    "whose removal gives the lowest mean WER over the sets at the kept margin while that mean stays "
                    "within prune_tol of every candidate's and no set is worse than the fallback",
                    "prune_path": [[lab, round(w, 5)] for lab, w in self.prune_path]}
                   if self.prune_tol is not None else {})}


def load_set(decode_dir: str | Path, text: str | Path | None = None) -> SetCandidates:
    """A decode dir's ``candidates.jsonl`` scored against ``text`` (default: the ``text`` of the feature dir
    named in its ``decode_info.json``)."""
    from specenh.metrics.wer import score

    d = Path(decode_dir)
    cpath = d / "candidates.jsonl"
    if not cpath.is_file():
        raise FileNotFoundError(f"{cpath} not found: decode {d} with a front-end of several candidates first")
    info = d / "decode_info.json"
    meta = json.loads(info.read_text()) if info.is_file() else {}
    if text is None:
        if not meta:
            raise FileNotFoundError(f"{info} not found (merge the decode, or pass the references)")
        text = Path(meta["feats_dir"]) / "text"
    from specenh.asr.base import text_normalizer_of

    normalizer = text_normalizer_of(meta.get("asr_model", ""))  # as stage 5 scored them
    refs = read_kv(text, allow_empty_value=True)
    recs = [json.loads(ln) for ln in cpath.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not recs:
        raise ValueError(f"{cpath}: no utterances")
    labels = recs[0]["labels"]
    for r in recs:
        if r["labels"] != labels:
            raise ValueError(f"{cpath}: utterance {r['utt']!r} has candidates {r['labels']}, the first has {labels}")
        if r["utt"] not in refs:
            raise ValueError(f"{cpath}: utterance {r['utt']!r} has no reference in {text}")
    utts = [r["utt"] for r in recs]
    errors = np.zeros((len(recs), len(labels)), dtype=np.int64)
    ref_len = None
    for k in range(len(labels)):
        res = score({u: refs[u] for u in utts}, {r["utt"]: r["hyps"][k] for r in recs}, n_boot=0,
                    normalizer=normalizer)
        pos = {u: i for i, u in enumerate(res.utt_ids)}
        order = [pos[u] for u in utts]
        errors[:, k] = res.words.errors[order]
        ref_len = res.words.ref_lengths[order]
    if any(c is None for r in recs for c in r["conf"]):
        raise ValueError(f"{cpath}: decoded with a first look (some candidates not decoded); tune from a decode of "
                         "every candidate (the auto YAML with a tune: block, as stage 4 decodes it)")
    conf = np.array([r["conf"] for r in recs], dtype=np.float64)
    return SetCandidates(d.name, list(labels), conf, errors, np.asarray(ref_len))


def tune_margin(sets: Sequence[SetCandidates], margins: Sequence[float] = DEFAULT_MARGINS,
                harm_p: float | None = None) -> TuneResult:
    """The margin of the grid kept by the rule in the module docstring."""
    if not sets:
        raise ValueError("tune_margin: no validation sets")
    margins = sorted({check_margin(m) for m in margins} | {1.0})  # 1.0: always the fallback, always allowed
    labels = sets[0].labels
    for s in sets:
        if s.labels[0] != labels[0]:
            raise ValueError(f"{s.name}: fallback candidate {s.labels[0]!r}, {sets[0].name}: {labels[0]!r}")
    res = TuneResult(margin=1.0, margins=margins, sets=[s.name for s in sets], fallback=labels[0],
                     fallback_wer={s.name: s.fallback_wer for s in sets},
                     wer={s.name: [s.wer(m) for m in margins] for s in sets}, harm_p=harm_p)

    def harmless(s: SetCandidates, i: int) -> bool:
        if res.wer[s.name][i] <= s.fallback_wer + 1e-12:
            return True
        return harm_p is not None and s.harm_p(margins[i]) >= harm_p

    ok = [i for i in range(len(margins)) if all(harmless(s, i) for s in sets)]
    best = min(ok, key=lambda i: (round(res.mean_wer(i), 12), -margins[i]))
    res.margin = margins[best]
    return res


def tune_first_look(sets: Sequence[SetCandidates], res: TuneResult, grid: Sequence[float]) -> TuneResult:
    """At the kept margin, the lowest first-look threshold of ``grid`` whose selection is worse than decoding
    every candidate on no validation set (point estimates; 1.0 changes nothing, so there is always one).
    Fills ``res.first_look*`` and returns ``res``."""
    grid = sorted({float(check_first_look(t)) for t in grid} | {1.0}, reverse=True)
    full = {s.name: s.wer(res.margin) for s in sets}
    res.first_looks = grid
    res.first_look_wer = {s.name: [s.wer(res.margin, t) for t in grid] for s in sets}
    res.first_look_skip = [float(np.mean(np.concatenate([s.looked(res.margin, t) for s in sets]))) for t in grid]
    ok = [i for i in range(len(grid)) if all(res.first_look_wer[s][i] <= full[s] + 1e-12 for s in full)]
    res.first_look = grid[max(ok)]  # grid descending: the last harmless one is the lowest threshold
    return res


def tune_prune(sets: Sequence[SetCandidates], res: TuneResult, tol: float) -> list[SetCandidates]:
    """Greedy backward elimination of candidates at the kept margin: each round drops the candidate (never the
    fallback) whose removal gives the lowest mean WER over the sets, as long as that mean stays within ``tol``
    (absolute WER) of the mean with every candidate and no set becomes worse than the fallback. Every candidate
    is a full ASR pass in stage 5, so each one dropped saves that. Fills ``res.drop``/``prune_*``; returns the
    sets without the dropped candidates (for the first-look tuning that follows)."""
    if not 0.0 <= tol < 1.0:
        raise ValueError(f"tune.prune must be a WER tolerance in [0, 1), got {tol!r}")
    full = float(np.mean([s.wer(res.margin) for s in sets]))
    res.prune_tol, res.drop, res.prune_path = float(tol), [], []
    cur = list(sets)
    while len(cur[0].labels) > 1:
        trials = []
        for lab in cur[0].labels[1:]:
            trial = [s.without([lab]) for s in cur]
            if all(t.wer(res.margin) <= t.fallback_wer + 1e-12 for t in trial):
                trials.append((round(float(np.mean([t.wer(res.margin) for t in trial])), 12), lab, trial))
        if not trials:
            break
        mean, lab, trial = min(trials, key=lambda t: t[:2])
        if mean > full + tol + 1e-12:
            break
        res.drop.append(lab)
        res.prune_path.append((lab, mean))
        cur = trial
    return cur


def write_tuned(config: str | Path, result: TuneResult, out: str | Path) -> Path:
    """``config`` (an auto YAML) with ``inference.margin`` set to the tuned margin and the ``tuned:`` record;
    its ``tune:`` block is dropped (the output is what stage 5 decodes with)."""
    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    if "members" not in cfg:
        raise ValueError(f"{config}: not an auto config (no 'members:')")
    cfg.pop("tune", None)
    cfg["inference"] = {**dict(cfg.get("inference") or {}), "margin": result.margin}
    if result.first_looks:
        cfg["inference"]["first_look"] = result.first_look
    if result.prune_tol is not None:
        cfg["inference"]["drop"] = list(result.drop)
    cfg["tuned"] = {"from": str(config), **result.to_dict()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = (f"# written by `specenh tune-auto` from {config}: the selection margin chosen on the validation sets\n"
            f"# {', '.join(result.sets)} (never on test data); stage 5 decodes with this file\n")
    out.write_text(head + yaml.safe_dump(cfg, sort_keys=False, width=110), encoding="utf-8")
    return out


def margins_of(config: str | Path) -> list[float]:
    """The grid of the config's ``tune: {margins: [...]}`` (default :data:`DEFAULT_MARGINS`)."""
    cfg = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    tune = cfg.get("tune") or {}
    if not isinstance(tune, dict):
        raise ValueError(f"{config}: 'tune:' must be a mapping (e.g. tune: {{margins: [0, 0.05, 0.1]}})")
    unknown = set(tune) - {"margins", "harm_p", "first_look", "prune"}
    if unknown:
        raise ValueError(f"{config}: unknown keys in 'tune:' {sorted(unknown)} (known: margins, harm_p, first_look, "
                         "prune)")
    return [check_margin(m) for m in tune.get("margins", DEFAULT_MARGINS)]


def first_looks_of(config: str | Path) -> list[float]:
    """The config's ``tune: {first_look: [...]}`` grid ([]: the first look is not tuned, stays off)."""
    tune = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("tune") or {}
    return [float(check_first_look(t)) for t in tune.get("first_look") or []]


def prune_of(config: str | Path) -> float | None:
    """The config's ``tune: {prune: tol}`` (None: every candidate kept)."""
    tune = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("tune") or {}
    tol = tune.get("prune")
    return None if tol is None else float(tol)


def harm_p_of(config: str | Path) -> float | None:
    """The config's ``tune: {harm_p: p}`` (None: the point rule)."""
    tune = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("tune") or {}
    p = tune.get("harm_p")
    if p is not None and not 0.0 < float(p) < 1.0:
        raise ValueError(f"{config}: tune.harm_p must be in (0, 1), got {p!r}")
    return None if p is None else float(p)


def format_table(res: TuneResult) -> str:
    """A plain-text table: WER (%) per margin and set, the fallback's row first, the kept margin marked."""
    base = min(res.sets, key=len)  # <set> and <set>_<condition>: columns named by the condition
    short = ([s[len(base) + 1:] if s != base else "clean" for s in res.sets]
             if all(s == base or s.startswith(base + "_") for s in res.sets) else list(res.sets))
    w = max(len(s) for s in short) + 2
    lines = [f"sets: {', '.join(res.sets)}" if short != res.sets else "",
             "margin".ljust(10) + "".join(s.rjust(w) for s in short) + "mean".rjust(8),
             f"{res.fallback:<10}" + "".join(f"{100 * res.fallback_wer[s]:{w}.1f}" for s in res.sets)
             + f"{100 * np.mean(list(res.fallback_wer.values())):8.1f}"]
    for i, m in enumerate(res.margins):
        mark = " <- kept" if m == res.margin else ""
        lines.append(f"{m:<10g}" + "".join(f"{100 * res.wer[s][i]:{w}.1f}" for s in res.sets)
                     + f"{100 * res.mean_wer(i):8.1f}" + mark)
    if res.prune_tol is not None:
        lines.append(f"pruned at margin {res.margin:g} (mean WER without each candidate in turn, tolerance "
                     f"{100 * res.prune_tol:g} points): " + (", ".join(f"{lab} {100 * w:.2f}" for lab, w in res.prune_path)
                                                             or "none"))
    if res.first_looks:
        lines.append(f"first look at margin {res.margin:g} (share of utterances whose other candidates are not decoded):")
        for i, t in enumerate(res.first_looks):
            mark = " <- kept" if t == res.first_look else ""
            lines.append(f"{t:<10g}" + "".join(f"{100 * res.first_look_wer[s][i]:{w}.1f}" for s in res.sets)
                         + f"{100 * np.mean([res.first_look_wer[s][i] for s in res.sets]):8.1f}"
                         + f"  skip {100 * res.first_look_skip[i]:.0f}%" + mark)
    return "\n".join(ln for ln in lines if ln)
