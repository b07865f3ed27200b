#!/usr/bin/env python3
"""Check the installation: imports, versions, espeak-ng, CUDA. Exit 1 naming what is missing."""
from __future__ import annotations

import importlib
import sys

REQUIRED = ["torch", "numpy", "scipy", "librosa", "soundfile", "soxr", "kaldiio", "jiwer", "yaml", "tqdm",
            "sentencepiece", "lightning", "nemo", "espeakng_loader", "specenh"]


def main() -> int:
    missing = []
    for name in REQUIRED:
        try:
            mod = importlib.import_module(name)
            print(f"  {name:16s} {getattr(mod, '__version__', '')}")
        except Exception as e:  # noqa: BLE001 - report every failure
            missing.append(f"{name} ({type(e).__name__}: {e})")
    try:
        import torch

        print(f"  cuda available   {torch.cuda.is_available()} ({torch.cuda.device_count()} devices)")
    except Exception:  # noqa: BLE001
        pass
    if missing:
        print("missing or broken: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
