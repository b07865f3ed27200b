"""Every enhancer and baseline behind one interface (:class:`FrontEnd`) and a name registry.

The names below are imported on first use (PEP 562): ``specenh.frontends.spec`` (what a recipe's front-end
name means) is read by the shell driver and must not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FrontEnd", "REGISTRY", "register", "build", "load", "resolve", "mask_padding"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("specenh.frontends.base"), name)
    raise AttributeError(f"module 'specenh.frontends' has no attribute {name!r}")
