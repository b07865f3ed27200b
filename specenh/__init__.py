"""specenh: does a spectrogram-enhancement front-end in front of a frozen ASR bring the WER back?"""
__version__ = "0.1.0"
