"""Speed benchmarks (``specenh bench``, benchmarks/run.py); the code is in :mod:`specenh.bench.core`.

Names are imported on first use (PEP 562), so that building the ``specenh`` command line imports no torch.
"""
from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("specenh.bench.core"), name)
