"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LJSPEECH_ROOT = Path(os.environ.get("SPECENH_LJSPEECH_ROOT", REPO.parent / "shared" / "data" / "ljspeech_lj001" / "LJSpeech-1.1"))
SHARED_DATA = Path(os.environ.get("SPECENH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ljspeech_root() -> Path:
    """The real LJSpeech subset shipped beside the repo for developers and CI; skip where absent."""
    if not (LJSPEECH_ROOT / "metadata.csv").is_file():
        pytest.skip(f"real-speech subset not found at {LJSPEECH_ROOT} (set SPECENH_LJSPEECH_ROOT)")
    return LJSPEECH_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real audio beside the repo (../shared/data: LibriSpeech clips, real noise, LJ001); skip where absent."""
    if not (SHARED_DATA / "noise_real").is_dir():
        pytest.skip(f"real audio for development not found at {SHARED_DATA} (set SPECENH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run beside other processes on 2 cores: one intra-op thread avoids oversubscription."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
