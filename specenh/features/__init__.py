"""Log-mel features matching the frozen ASR's preprocessor; kaldiio ark/scp storage."""
from specenh.features.logmel import FeatureConfig, LogMelExtractor, num_frames

__all__ = ["FeatureConfig", "LogMelExtractor", "num_frames"]
