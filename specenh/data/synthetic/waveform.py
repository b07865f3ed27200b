"""Audio post-processing of the synthetic corpus: espeak-ng's int16 output -> the corpus waveform.

Leading and trailing silence is trimmed to a fixed 100 ms margin, the signal is resampled (soxr) to
the corpus rate and peak-normalised to -3 dBFS.
"""
from __future__ import annotations

import numpy as np

MARGIN_S = 0.1
PEAK_DBFS = -3.0
_TRIM_FRAME_S = 0.01
_TRIM_REL_DB = -50.0


def trim_silence(x: np.ndarray, sr: int, margin_s: float = MARGIN_S) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames 50 dB below the loudest) and leave exactly ``margin_s``
    (zero-padded where the signal had less)."""
    frame = max(1, int(round(_TRIM_FRAME_S * sr)))
    n_frames = len(x) // frame
    if n_frames == 0:
        raise ValueError("signal shorter than one frame")
    rms = np.sqrt(np.mean(x[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (_TRIM_REL_DB / 20))
    if rms.max() <= 0 or loud.size == 0:
        raise ValueError("silent signal")
    margin = int(round(margin_s * sr))
    start, end = loud[0] * frame, (loud[-1] + 1) * frame
    core = x[start:end]
    pre = np.zeros(margin, dtype=x.dtype)
    return np.concatenate([pre, core, pre])


def postprocess(pcm: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """int16 espeak output -> trimmed, resampled, peak-normalised float32."""
    from specenh.data.audio import resample

    x = trim_silence(pcm.astype(np.float32) / 32768.0, sr_in)
    y = resample(x, sr_in, sr_out)
    peak = float(np.max(np.abs(y)))
    return (y * (10 ** (PEAK_DBFS / 20) / peak)).astype(np.float32)
