"""``auto``: a front-end chosen per utterance by the frozen ASR's own confidence.

Its members are front-end specs (registered names, trained checkpoints, inference-variant YAMLs, which may
carry observation-adding weights); stage 5 runs every member on a batch and keeps, for each utterance, the
output whose CTC posteriors are the most confident (mean over frames of the top posterior). No transcript is
used at test time. A recipe names it with a YAML holding ``members:`` (``conf/frontend/auto.yaml``)::

    members: [identity, exp/frontend_stylegan/model.pt, exp/frontend_bwe/model.pt]
    inference: {margin: 0.05}   # keep the first member unless another is more confident by 0.05

**Margin.** The first candidate (the first member: ``identity`` in the recipes) is the fallback: another
candidate replaces it only when its confidence exceeds the fallback's by more than ``margin`` (confidence is
a mean posterior in (0, 1]; margin 0 is the plain argmax, margin 1 always keeps the fallback). A confident
but wrong front-end (a mask that sharpens the posteriors on clean speech) then no longer costs the speech it
does not help. A recipe chooses the margin on its validation subset, never on test data: with a ``tune:``
block in the YAML, stage 4 decodes the validation sets once with every candidate, scores each margin of the
grid from the logged confidences (:mod:`specenh.frontends.auto_tune`) and writes the tuned YAML into
``exp/frontend_<name>/``, which stage 5 then uses.

**First look** (``inference: {first_look: t}``, off by default): the first candidate is decoded alone first, and
an utterance whose confidence in it is at least ``min(t, 1 - margin)`` keeps it without the other candidates
being decoded (above ``1 - margin`` none could win: that part changes nothing). A ``tune: {first_look: [...]}``
grid lets stage 4 keep the lowest ``t`` that is worse on no validation set than decoding every candidate.

**Pruning** (``inference: {drop: [labels]}``, written by ``tune: {prune: tol}``): candidates that validation shows
add nothing are not computed or decoded, e.g. ``stylegan/alpha=0.25``; every candidate costs a full ASR pass.

The choice needs the ASR, so ``auto`` runs only where one is loaded (``specenh decode``).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from specenh.frontends.base import FrontEnd, register
from specenh.frontends.spec import member_label


@register("auto")
class Auto(FrontEnd):
    """Per-utterance choice among ``members`` by the frozen ASR's confidence (in stage 5)."""

    domain = "logmel"
    standalone = False

    def __init__(self, members: Sequence[str] = (), select: str = "confidence", margin: float = 0.0,
                 first_look: float | None = None, drop: Sequence[str] = ()):
        margin = check_margin(margin)
        first_look = check_first_look(first_look)
        super().__init__(members=[str(m) for m in members], select=select, margin=margin, first_look=first_look,
                         drop=[str(d) for d in drop])
        self.margin = margin
        self.first_look = first_look
        if not members:
            raise ValueError("auto: no members (list front-end specs under 'members:')")
        if select != "confidence":
            raise ValueError(f"auto: select must be 'confidence', got {select!r}")
        from specenh.frontends.base import resolve

        self._members = []
        for m in members:
            try:
                self._members.append((member_label(str(m)), resolve(str(m))))
            except (FileNotFoundError, ValueError) as e:
                raise ValueError(f"auto: member {m!r}: {e}") from None
        labels = [lab for lab, _ in self._members]
        if len(set(labels)) != len(labels):
            raise ValueError(f"auto: members with the same name {labels}")
        self.member_modules = torch.nn.ModuleList([fe for _, fe in self._members])
        self._alphas = {lab: None if fe.obs_alpha is None else list(fe.obs_alpha) for lab, fe in self._members}
        self.drop: list[str] = []
        self._set_drop(drop)

    def candidate_labels(self) -> list[str]:
        """Every member's candidates before ``drop``, labelled as stage 5 logs them (``stylegan/alpha=0.5``)."""
        return [lab if alphas is None else f"{lab}/alpha={a:g}" for lab, alphas in self._alphas.items()
                for a in (alphas or [None])]

    def _set_drop(self, drop: Sequence[str]) -> None:
        """Leave out the candidates labelled ``drop`` (``tune: {prune: ...}``): a member all of whose candidates
        are dropped is not run, a dropped observation-adding weight is not computed; the first member (the
        fallback) cannot be dropped."""
        known = self.candidate_labels()
        bad = [d for d in drop if d not in known]
        if bad:
            raise ValueError(f"auto: drop names no candidate: {bad} (candidates: {known})")
        first = self._members[0][0]
        if any(d == first or d.startswith(first + "/") for d in drop):
            raise ValueError(f"auto: the first member {first!r} is the fallback and cannot be dropped")
        self.drop = list(drop)
        self._kept = []
        for lab, fe in self._members:
            alphas = self._alphas[lab]
            if alphas is None:
                if lab not in drop:
                    self._kept.append((lab, fe))
                continue
            keep = [a for a in alphas if f"{lab}/alpha={a:g}" not in drop]
            if keep:
                fe.obs_alpha = keep
                self._kept.append((lab, fe))

    def replace_member(self, label: str, fe: FrontEnd) -> None:
        """Run member ``label`` as ``fe`` (the same network under another runtime, :mod:`specenh.stages.runtime`)."""
        self._members = [(lab, fe if lab == label else m) for lab, m in self._members]
        self._kept = [(lab, fe if lab == label else m) for lab, m in self._kept]

    def members(self) -> list[tuple[str, FrontEnd]]:
        """The members stage 5 runs (those with a candidate not dropped), with their labels."""
        return list(self._kept)

    def set_inference_options(self, **options: Any) -> None:
        if "margin" in options:
            options["margin"] = check_margin(options["margin"])
        if "first_look" in options:
            options["first_look"] = check_first_look(options["first_look"])
        if "drop" in options:
            drop = options["drop"] or []
            if isinstance(drop, str) or not all(isinstance(d, str) for d in drop):
                raise ValueError(f"auto: drop must be a list of candidate labels, got {drop!r}")
            self._set_drop(drop)
            options["drop"] = list(drop)
        super().set_inference_options(**options)

    def set_observation_adding(self, alpha: Any = None, alpha_domain: str = "logmel") -> None:
        if alpha is not None:
            raise ValueError("auto: give observation-adding weights to its members (their YAML's inference: alpha)")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError("auto chooses among its members with the frozen ASR's confidence: use it in stage 5 "
                         "(specenh decode), not alone")


def _unit_interval(name: str, value: Any, extra: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"auto: {name} must be a number in [0, 1]{extra}, got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"auto: {name} must be in [0, 1], got {value!r}")
    return v


def check_margin(margin: Any) -> float:
    """The selection margin as a float in [0, 1] (a clear error otherwise)."""
    return _unit_interval("margin", margin)


def check_first_look(first_look: Any) -> float | None:
    """The first-look threshold as a float in [0, 1], or None (off)."""
    return None if first_look is None else _unit_interval("first_look", first_look, " or null")


def first_look_threshold(first_look: float | None, margin: float) -> float | None:
    """Identity's confidence from which the other candidates are not decoded (None: all are, always).

    With a first look ``t``: an utterance whose first candidate has confidence >= ``t`` keeps it. Whatever ``t``,
    from ``1 - margin`` on no other candidate could win (confidences are at most 1 and must beat the first by more
    than ``margin``), so the threshold is ``min(t, 1 - margin)``: the part above ``1 - margin`` is free."""
    if first_look is None:
        return None
    return min(first_look, 1.0 - margin) if margin > 0 else first_look


def select_by_confidence(conf: torch.Tensor, margin: float = 0.0) -> list[int]:
    """Per utterance, the index of the candidate to keep.

    conf: ``[K, B]`` confidences of K candidates (candidate 0 is the fallback) for B utterances. The most
    confident candidate wins (ties: the first) unless it beats candidate 0 by ``margin`` or less, in which
    case candidate 0 is kept. Returns B indices.
    """
    if conf.dim() != 2 or conf.shape[0] == 0:
        raise ValueError(f"conf must be [K, B] with K >= 1, got {tuple(conf.shape)}")
    best = conf.argmax(0)
    gain = conf.gather(0, best[None])[0] - conf[0]
    keep = gain > margin if margin > 0 else torch.ones_like(best, dtype=torch.bool)
    return torch.where(keep, best, torch.zeros_like(best)).tolist()
