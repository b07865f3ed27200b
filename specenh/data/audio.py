"""Audio reading and writing with checks that name the file and utterance on bad input."""
from __future__ import annotations

import io
import logging
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from specenh.utils.io import atomic_path

log = logging.getLogger(__name__)
_RESAMPLE_LOGGED: set[tuple[int, int]] = set()
_DOWNMIX_LOGGED: set[int] = set()

#: audio whose peak is below this level (dBFS) is "silent": 1e-3, a few 16-bit steps above
#: digital silence and 60 dB below full scale; no speech recording is that quiet
SILENCE_PEAK_DB = -60.0
SILENCE_PEAK = 10.0 ** (SILENCE_PEAK_DB / 20.0)


class AudioError(ValueError):
    """Unreadable, empty, truncated, silent or non-finite audio; the message names the file and the utterance."""


def describe(path: str | Path, utt: str | None = None) -> str:
    """``utterance 'u1', file a/b.wav`` (or ``file a/b.wav``): how every audio message names its input."""
    return f"utterance {utt!r}, file {path}" if utt else f"file {path}"


def riff_data_sizes(path: str | Path) -> tuple[int, int] | None:
    """(bytes the ``data`` chunk header declares, bytes the file actually holds after it) of a RIFF/WAVE file.

    None when ``path`` is not a RIFF/WAVE file, has no ``data`` chunk header, or declares an
    unknown size (0 or 0xFFFFFFFF, as streaming writers do). libsndfile quietly reports the frames
    present in a truncated file, so this is the only place a cut-off wav shows up.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            fmt = "<I" if head[:4] == b"RIFF" else ">I"
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, (csize,) = chunk[:4], struct.unpack(fmt, chunk[4:])
                if cid == b"data":
                    if csize in (0, 0xFFFFFFFF):
                        return None
                    return csize, size - (pos + 8)
                pos += 8 + csize + (csize & 1)  # chunks are padded to an even size
    except OSError:
        return None
    return None


def check_truncated(path: str | Path, frames: int, samplerate: int, utt: str | None = None) -> None:
    """Raise AudioError when a wav holds less audio data than its header declares (a cut-off copy).

    ``frames``/``samplerate``: what libsndfile reports (the frames actually present).
    """
    sizes = riff_data_sizes(path)
    if sizes is None:
        return
    declared, present = sizes
    if present >= declared:
        return
    seconds = ""
    if samplerate > 0 and frames > 0 and present > 0:
        per_frame = present / frames  # bytes per frame
        seconds = f" ({frames / samplerate:.2f} s of {declared / per_frame / samplerate:.2f} s)"
    raise AudioError(f"truncated audio ({describe(path, utt)}): the wav header declares {declared} bytes of "
                     f"audio data, the file holds {present}{seconds}")


def peak_dbfs(wave: np.ndarray) -> float:
    """Peak level in dBFS (-inf for digital silence)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def check_not_silent(wave: np.ndarray, path: str | Path, utt: str | None = None) -> None:
    """Raise AudioError when the peak is below SILENCE_PEAK_DB (all-zero or near-silent audio)."""
    level = peak_dbfs(wave)
    if level < SILENCE_PEAK_DB:
        what = "all-zero" if level == float("-inf") else f"near-silent (peak {level:.1f} dBFS)"
        raise AudioError(f"silent audio ({describe(path, utt)}): {what}, below the {SILENCE_PEAK_DB:.0f} dBFS "
                         f"threshold")


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, very high quality). wave: [N] float."""
    if sr_in == sr_out:
        return wave
    import soxr

    return soxr.resample(wave.astype(np.float64), sr_in, sr_out, quality="VHQ").astype(np.float32)


def _log_once(logged: set, key: object, msg: str, *args: object) -> None:
    """One INFO line per ``key`` and process (a whole corpus would log every file), then DEBUG."""
    level = logging.DEBUG if key in logged else logging.INFO
    logged.add(key)
    log.log(level, msg, *args)


def load_audio(path: str | Path, target_sr: int | None = 16000, utt: str | None = None,
               mono: bool = True, allow_silent: bool = True) -> tuple[np.ndarray, int]:
    """Read audio as float32 [N] in [-1, 1], resampled to ``target_sr`` (logged) and mixed to mono (logged).

    Raises AudioError on a missing, unreadable, truncated (wav data shorter than its header
    declares), empty or NaN/inf file, and with ``allow_silent=False`` on a silent one (peak below
    SILENCE_PEAK_DB).
    """
    who = describe(path, utt)
    try:
        with sf.SoundFile(str(path)) as f:
            check_truncated(path, f.frames, f.samplerate, utt)
            wave = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
    except AudioError:
        raise
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / FileNotFoundError
        raise AudioError(f"cannot read audio ({who}): {e}") from None
    if wave.shape[0] == 0:
        raise AudioError(f"empty audio ({who})")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"audio contains NaN or inf samples ({who})")
    if mono and wave.shape[1] > 1:
        _log_once(_DOWNMIX_LOGGED, wave.shape[1], "mixing %s down from %d channels to mono (further %d-channel "
                  "files: debug level)", who, wave.shape[1], wave.shape[1])
    wave = wave.mean(axis=1) if mono else wave.T
    if not allow_silent:
        check_not_silent(wave, path, utt)
    if target_sr is not None and sr != target_sr:
        _log_once(_RESAMPLE_LOGGED, (sr, target_sr), "resampling %s from %d Hz to %d Hz (further files at this "
                  "rate: debug level)", who, sr, target_sr)
        wave = resample(wave, sr, target_sr)
        sr = target_sr
    return np.ascontiguousarray(wave, dtype=np.float32), sr


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (the one place audio bytes reach the disk)."""
    with open(path, "wb") as f:
        f.write(data)


def write_wav(path: str | Path, wave: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write a wav atomically. Float input is clipped to [-1, 1) for integer subtypes.

    The wav is encoded in memory and written with Python's file I/O, so a full disk raises an
    OSError naming ``path`` and the reason (libsndfile only says "System error."), and no partial
    file is left behind.
    """
    data = encode_wav(wave, sr, subtype)
    with atomic_path(path) as tmp:
        _write_file(tmp, data)


def encode_wav(wave: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """The bytes of the wav file :func:`write_wav` writes (float input clipped to [-1, 1) for PCM)."""
    if subtype.startswith("PCM"):
        wave = np.clip(wave, -1.0, 1.0 - 2.0 ** -15)
    buf = io.BytesIO()
    sf.write(buf, wave, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def pcm16_roundtrip(wave: np.ndarray, sr: int) -> np.ndarray:
    """float32 [N] as it reads back after :func:`write_wav` (16-bit PCM) and :func:`load_audio`.

    The same libsndfile conversions both ways, in memory: what stage 3 reads from stage 2's wavs,
    bit for bit (the online training data of :mod:`specenh.train.online` relies on it).
    """
    with sf.SoundFile(io.BytesIO(encode_wav(wave, sr, "PCM_16"))) as f:
        out = f.read(dtype="float32", always_2d=True)
    return np.ascontiguousarray(out.mean(axis=1), dtype=np.float32)
