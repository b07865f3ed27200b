"""Front-ends without learning: ``identity`` (the unprocessed baseline) and ``oracle`` (clean input:
the upper bound of any enhancer)."""
from __future__ import annotations

import torch

from specenh.frontends.base import BatchInputs, FrontEnd, register


@register("identity")
class Identity(FrontEnd):
    """y = x. Works in either domain; registered as log-mel."""

    domain = "logmel"
    passthrough = True

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
        return x, lengths


@register("oracle")
class Oracle(FrontEnd):
    """Returns the clean features paired with the degraded ones (``clean`` [B, D, T]): the upper bound."""

    domain = "logmel"
    needs_clean = True
    reads_input = False

    def extra_inputs(self, batch: BatchInputs) -> dict:
        if batch.clean is None:
            raise ValueError("oracle front-end needs the clean features (--clean-feats-dir, clean.scp)")
        clean, clean_lengths = batch.clean()
        return {"clean": clean.to(batch.device), "clean_lengths": clean_lengths}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, clean: torch.Tensor | None = None,
                clean_lengths: torch.Tensor | None = None, **kw) -> tuple[torch.Tensor, torch.Tensor]:
        if clean is None:
            raise ValueError("oracle front-end needs the clean features (clean.scp in the data dir)")
        return clean, (clean_lengths if clean_lengths is not None else lengths)
