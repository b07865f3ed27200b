"""Import optional built-in modules by name (registries fill themselves on import)."""
from __future__ import annotations

import importlib
from typing import Iterable


def import_optional(modules: Iterable[str]) -> None:
    """Import each module; skip one that does not exist, re-raise errors from inside one that does."""
    for m in modules:
        try:
            importlib.import_module(m)
        except ModuleNotFoundError as e:
            if e.name != m:
                raise
