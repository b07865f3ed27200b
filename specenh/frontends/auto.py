"""``auto``: a front-end chosen per utterance by the frozen ASR's own confidence.

Its members are front-end specs (registered names, trained checkpoints, inference-variant YAMLs, which may
carry observation-adding weights); stage 5 runs every member on a batch and keeps, for each utterance, the
output whose CTC posteriors are the most confident (mean over frames of the top posterior). No transcript is
used at test time. A recipe names it with a YAML holding ``members:`` (``conf/frontend/auto.yaml``)::

    members: [identity, exp/frontend_stylegan/model.pt, exp/frontend_bwe/model.pt]

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

    def __init__(self, members: Sequence[str] = (), select: str = "confidence"):
        super().__init__(members=[str(m) for m in members], select=select)
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

    def members(self) -> list[tuple[str, FrontEnd]]:
        return list(self._members)

    def set_observation_adding(self, alpha: Any = None, alpha_domain: str = "logmel") -> None:
        if alpha is not None:
            raise ValueError("auto: give observation-adding weights to its members (their YAML's inference: alpha)")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError("auto chooses among its members with the frozen ASR's confidence: use it in stage 5 "
                         "(specenh decode), not alone")
