"""espeak-ng through ctypes (the library and data shipped by the ``espeakng-loader`` package).

espeak-ng keeps synthesis state in static variables that no API call resets, so :class:`Espeak`
loads a fresh library instance for every utterance (``dlclose`` + ``dlopen``) and seeds it from
the utterance (see *Determinism* in :mod:`specenh.data.synthetic`). The C library is not thread
safe: parallel jobs are separate processes, each with its own instance.
"""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Iterable

import numpy as np

from specenh.data.synthetic.plan import UttSpec
from specenh.data.synthetic.voices import Voice


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised or asked to synthesise."""


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def espeak_paths() -> tuple[str, str]:
    """(library path, espeak-ng-data path) shipped by the ``espeakng-loader`` package."""
    try:
        import espeakng_loader
    except ImportError as e:
        raise EspeakError("the Python package 'espeakng-loader' is required for the synthetic corpus "
                          "(pip install espeakng-loader)") from e
    lib_path = espeakng_loader.get_library_path()
    try:
        data_path = espeakng_loader.get_data_path()
    except Exception as e:  # it raises RuntimeError when the data dir is missing
        raise EspeakError(f"espeak-ng data not found: {e}") from None
    if not Path(lib_path).is_file():
        raise EspeakError(f"espeak-ng library not found at {lib_path} (broken espeakng-loader install?)")
    return lib_path, data_path


def check_voices(voices: Iterable[Voice], data_path: str) -> None:
    """Raise EspeakError naming every accent or variant that the espeak-ng data lacks."""
    root = Path(data_path)
    langs = {p.name.lower() for p in (root / "lang").rglob("*") if p.is_file()}
    variants = {p.name for p in (root / "voices" / "!v").iterdir()} if (root / "voices" / "!v").is_dir() else set()
    missing = sorted({f"accent {v.accent}" for v in voices if v.accent not in langs}
                     | {f"variant {v.variant}" for v in voices if v.variant not in variants})
    if missing:
        raise EspeakError(f"espeak-ng data at {data_path} lacks: {', '.join(missing)}")


class Espeak:
    """espeak-ng (synchronous mode) through ctypes, reloaded for every utterance so that no
    synthesis state leaks from one utterance into the next (see the package docstring)."""

    def __init__(self, lib_path: str, data_path: str):
        self.lib_path, self.data_path = lib_path, data_path
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self._libc = ctypes.CDLL(None)
        self.sample_rate = 0
        self._load()  # fail early with a clear message
        self.version = self._version()
        self._unload()

    def _on_audio(self, wav, n: int, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def _load(self) -> None:
        try:
            lib = ctypes.CDLL(self.lib_path, mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise EspeakError(f"cannot load the espeak-ng library {self.lib_path}: {e}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT)
        if sr <= 0:
            raise EspeakError(f"espeak-ng ({self.lib_path}) failed to initialise with data {self.data_path} "
                              f"(code {sr})")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib, self.sample_rate = lib, sr

    def _unload(self) -> None:
        if self._lib is None:
            return
        import _ctypes

        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)
        self._lib = None

    def _version(self) -> str:
        assert self._lib is not None
        return (self._lib.espeak_Info(None) or b"?").decode("utf-8", "replace")

    def synthesize(self, spec: UttSpec) -> np.ndarray:
        """int16 samples at ``self.sample_rate`` for one utterance."""
        self._load()
        try:
            lib = self._lib
            assert lib is not None
            if lib.espeak_SetVoiceByName(spec.voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {spec.voice!r} (utterance {spec.utt})")
            for param, value in ((_PARAM_RATE, spec.rate), (_PARAM_PITCH, spec.pitch),
                                 (_PARAM_RANGE, spec.pitch_range), (_PARAM_WORDGAP, spec.word_gap)):
                lib.espeak_SetParameter(param, value, 0)
            lib.espeak_ng_SetRandSeed(spec.seed)
            self._libc.srand(ctypes.c_uint(spec.seed))
            self._chunks = []
            text = spec.tts_text.encode("utf-8")
            rc = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if rc != 0 or lib.espeak_Synchronize() != 0:
                raise EspeakError(f"espeak-ng failed to synthesise utterance {spec.utt} (code {rc})")
        finally:
            self._unload()
        if not self._chunks:
            raise EspeakError(f"espeak-ng returned no audio for utterance {spec.utt}: {spec.tts_text!r}")
        return np.concatenate(self._chunks)
