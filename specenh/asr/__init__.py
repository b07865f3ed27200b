"""Frozen ASR backends (NeMo, Whisper: load, freeze, decode from features, encoder features, losses) and
reference ASR training. :func:`load_asr` picks the backend from the spec.

The names below are imported on first use (PEP 562), so that ``specenh.asr.cli`` can build its argument
parser without importing torch and NeMo: every stage step of a recipe is a new process.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FrozenASR", "ASRLoadError", "load_asr", "register_backend", "load_nemo_model", "NemoASR"]
_HOME = {"load_nemo_model": "specenh.asr.frozen", "NemoASR": "specenh.asr.frozen"}


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(_HOME.get(name, "specenh.asr.base")), name)
    raise AttributeError(f"module 'specenh.asr' has no attribute {name!r}")
