"""Log-mel features matching the frozen ASR's preprocessor; kaldiio ark/scp storage.

The names below are imported on first use (PEP 562): ``specenh.features.cli`` builds its argument
parser without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FeatureConfig", "LogMelExtractor", "num_frames"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("specenh.features.logmel"), name)
    raise AttributeError(f"module 'specenh.features' has no attribute {name!r}")
