"""Frozen NeMo ASR (load, freeze, decode from features, encoder features) and reference ASR training."""
from specenh.asr.frozen import ASRLoadError, FrozenASR, load_nemo_model

__all__ = ["FrozenASR", "ASRLoadError", "load_nemo_model"]
