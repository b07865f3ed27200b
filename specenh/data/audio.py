"""Audio reading and writing with checks that name the file and utterance on bad input."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from specenh.utils.io import atomic_path

log = logging.getLogger(__name__)
_RESAMPLE_LOGGED: set[tuple[int, int]] = set()


class AudioError(ValueError):
    """Unreadable, empty or non-finite audio; the message names the file and the utterance."""


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, very high quality). wave: [N] float."""
    if sr_in == sr_out:
        return wave
    import soxr

    return soxr.resample(wave.astype(np.float64), sr_in, sr_out, quality="VHQ").astype(np.float32)


def load_audio(path: str | Path, target_sr: int | None = 16000, utt: str | None = None,
               mono: bool = True) -> tuple[np.ndarray, int]:
    """Read audio as float32 [N] in [-1, 1], resampled to ``target_sr`` (logged) and mixed to mono.

    Raises AudioError on a missing, unreadable, empty or NaN/inf file.
    """
    who = f"utterance {utt!r}, file {path}" if utt else f"file {path}"
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / FileNotFoundError
        raise AudioError(f"cannot read audio ({who}): {e}") from None
    if wave.shape[0] == 0:
        raise AudioError(f"empty audio ({who})")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"audio contains NaN or inf samples ({who})")
    wave = wave.mean(axis=1) if mono else wave.T
    if target_sr is not None and sr != target_sr:
        # one INFO line per rate pair and process (a 22.05 kHz corpus would log every file), then DEBUG
        level = logging.DEBUG if (sr, target_sr) in _RESAMPLE_LOGGED else logging.INFO
        _RESAMPLE_LOGGED.add((sr, target_sr))
        log.log(level, "resampling %s from %d Hz to %d Hz (further files at this rate: debug level)", who, sr, target_sr)
        wave = resample(wave, sr, target_sr)
        sr = target_sr
    return np.ascontiguousarray(wave, dtype=np.float32), sr


def write_wav(path: str | Path, wave: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write a wav atomically. Float input is clipped to [-1, 1) for integer subtypes."""
    if subtype.startswith("PCM"):
        wave = np.clip(wave, -1.0, 1.0 - 2.0 ** -15)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wave, sr, subtype=subtype, format="WAV")
