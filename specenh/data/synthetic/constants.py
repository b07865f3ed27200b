"""Constants shared by the stages of the synthetic corpus (text, voices, plan, audio)."""
from __future__ import annotations

#: bump when anything that changes the generated text or audio changes
GENERATOR_VERSION = 1
SETS: tuple[str, ...] = ("train", "dev", "test")
