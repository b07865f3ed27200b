"""Frozen NeMo ASR (load, freeze, decode from features, encoder features) and reference ASR training.

The names below are imported on first use (PEP 562), so that ``specenh.asr.cli`` can build its argument
parser without importing torch and NeMo: every stage step of a recipe is a new process.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FrozenASR", "ASRLoadError", "load_nemo_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("specenh.asr.frozen"), name)
    raise AttributeError(f"module 'specenh.asr' has no attribute {name!r}")
