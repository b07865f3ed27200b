"""The log-mel settings (:class:`FeatureConfig`): a plain dataclass, importable without torch."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping


FLAVOURS = ("nemo", "whisper")


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the log-mel front end (names as in NeMo's preprocessor config)."""

    sample_rate: int = 16000
    window_size: float = 0.025
    window_stride: float = 0.01
    n_fft: int = 512
    features: int = 80
    window: str = "hann"
    lowfreq: float = 0.0
    highfreq: float | None = None
    preemph: float | None = 0.97
    mag_power: float = 2.0
    log_zero_guard_type: str = "add"
    log_zero_guard_value: float = 2.0 ** -24
    mel_norm: str | None = "slaney"
    normalize: str | None = "per_feature"  # recorded for the ASR wrapper; never applied here
    #: ``nemo``: NeMo's preprocessor (natural log, guard, pre-emphasis; the fields above);
    #: ``whisper``: OpenAI Whisper's log-mel (periodic Hann, log10 clamped at 1e-10, the utterance's
    #: max-8 floor, then (x + 4) / 4; ``log_zero_guard_*`` and ``preemph`` unused), as faster-whisper computes it
    flavour: str = "nemo"

    @property
    def win_length(self) -> int:
        return int(self.window_size * self.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.window_stride * self.sample_rate)

    @classmethod
    def whisper(cls, n_mels: int = 80) -> "FeatureConfig":
        """Whisper's features: 16 kHz, n_fft 400 (25 ms periodic Hann), hop 160, ``n_mels`` slaney mels."""
        return cls(sample_rate=16000, window_size=0.025, window_stride=0.01, n_fft=400, features=n_mels,
                   window="hann", preemph=None, log_zero_guard_type="clamp", log_zero_guard_value=1e-10,
                   mel_norm="slaney", normalize=None, flavour="whisper")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown feature config keys: {sorted(unknown)}")
        if d.get("flavour", "nemo") not in FLAVOURS:
            raise ValueError(f"feature config: flavour must be one of {FLAVOURS}, got {d.get('flavour')!r}")
        return cls(**dict(d))

    @classmethod
    def from_nemo(cls, pre: Mapping[str, Any]) -> "FeatureConfig":
        """From a NeMo ``AudioToMelSpectrogramPreprocessor`` config (dict or DictConfig).

        Raises ValueError for settings we do not reproduce (frame splicing, exact padding,
        explicit sample counts that disagree with window_size).
        """
        pre = dict(pre)
        target = str(pre.get("_target_", "AudioToMelSpectrogramPreprocessor"))
        if "AudioToMelSpectrogramPreprocessor" not in target:
            raise ValueError(f"unsupported ASR preprocessor {target!r}: only AudioToMelSpectrogramPreprocessor")
        if int(pre.get("frame_splicing", 1) or 1) != 1:
            raise ValueError("frame_splicing > 1 is not supported")
        if pre.get("exact_pad", False):
            raise ValueError("exact_pad=True is not supported")
        sr = int(pre.get("sample_rate", 16000))
        win = pre.get("window_size", 0.02)
        hop = pre.get("window_stride", 0.01)
        if pre.get("n_window_size"):
            win = int(pre["n_window_size"]) / sr
        if pre.get("n_window_stride"):
            hop = int(pre["n_window_stride"]) / sr
        n_fft = pre.get("n_fft") or 2 ** math.ceil(math.log2(int(win * sr)))
        return cls(
            sample_rate=sr, window_size=float(win), window_stride=float(hop), n_fft=int(n_fft),
            features=int(pre.get("features", 64)), window=str(pre.get("window", "hann")),
            lowfreq=float(pre.get("lowfreq", 0) or 0), highfreq=pre.get("highfreq"),
            preemph=pre.get("preemph", 0.97), mag_power=float(pre.get("mag_power", 2.0)),
            log_zero_guard_type=str(pre.get("log_zero_guard_type", "add")),
            log_zero_guard_value=float(pre.get("log_zero_guard_value", 2.0 ** -24)),
            mel_norm=pre.get("mel_norm", "slaney"), normalize=pre.get("normalize", "per_feature"),
        )

    def to_nemo(self) -> dict[str, Any]:
        """A NeMo preprocessor config giving the same features (with dither 0, no normalisation)."""
        return {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": self.sample_rate, "window_size": self.window_size, "window_stride": self.window_stride,
            "n_fft": self.n_fft, "features": self.features, "window": self.window, "lowfreq": self.lowfreq,
            "highfreq": self.highfreq, "preemph": self.preemph, "mag_power": self.mag_power,
            "log_zero_guard_type": self.log_zero_guard_type, "log_zero_guard_value": self.log_zero_guard_value,
            "mel_norm": self.mel_norm, "normalize": self.normalize, "dither": 0.0, "pad_to": 0,
        }
