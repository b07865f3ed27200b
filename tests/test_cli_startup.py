"""Every recipe step is a new ``specenh`` process (hundreds per run): building the CLI and the light
steps (merges, validation, degradation) must not import torch or NeMo (~3 s each on these cores)."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "nemo", "lightning", "librosa")


@pytest.mark.parametrize("code", [
    "from specenh.cli import build_parser; build_parser()",
    "import specenh.stages.decode_merge, specenh.features.extract, specenh.features.config",
    "import specenh.degrade.apply, specenh.data.validate, specenh.metrics.wer",
    "import specenh.asr, specenh.features; from specenh.features import config",
])
def test_light_imports(code):
    probe = f"import sys; {code}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"{code!r} imported {out.strip()}"


def test_lazy_package_names_still_resolve():
    from specenh.asr import FrozenASR
    from specenh.features import FeatureConfig, LogMelExtractor
    from specenh.features.logmel import FeatureConfig as F2

    assert F2 is FeatureConfig and callable(LogMelExtractor) and hasattr(FrozenASR, "decode")
    import specenh.features

    with pytest.raises(AttributeError):
        specenh.features.nope  # noqa: B018
