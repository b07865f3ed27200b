"""specenh.degrade: degradations (noise, bandlimit, holes, codec, reverb, griffinlim), each a pure
function of ``(wave, sr, rng, **params)``, composed into YAML conditions and applied to data dirs
(stage 2).

The heavy parts are imported lazily so that ``specenh --help`` stays fast::

    from specenh.degrade import load_condition, degrade_data_dir, get_degradation
"""
from __future__ import annotations

import importlib
from typing import Any

from specenh.degrade.registry import (  # noqa: F401  (light: numpy only)
    DegradeResult,
    available_degradations,
    get_degradation,
    register,
)

_LAZY = {
    "Condition": "specenh.degrade.condition",
    "Step": "specenh.degrade.condition",
    "DegradeError": "specenh.degrade.condition",
    "load_condition": "specenh.degrade.condition",
    "condition_from_dict": "specenh.degrade.condition",
    "degrade_data_dir": "specenh.degrade.apply",
    "merge_jobs": "specenh.degrade.apply",
}

__all__ = ["DegradeResult", "available_degradations", "get_degradation", "register", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'specenh.degrade' has no attribute {name!r}")
