"""The reference enhancer: conditional StyleGAN2 spectrogram enhancer with style truncation and a
contextual alignment loss on frozen-ASR encoder features, after Y. Li, "Zero-Shot Speech Recognition
through Spectrogram Enhancement Based on Style Truncation and Contextual Alignment Loss" (under review).

- :mod:`.model`: mapping network (``w_avg``, ``truncate``), generator, discriminator and the
  ``stylegan`` front-end (:class:`StyleGANEnhancer`);
- :mod:`.losses`: contextual loss, hinge/adversarial losses, R1 penalty, consistency loss.

Training: :mod:`specenh.train.gan` (``specenh train-frontend --name stylegan``).
"""
from specenh.frontends.stylegan.model import (Discriminator, Generator, MappingNetwork, StyleGANEnhancer,
                                              truncate)

__all__ = ["StyleGANEnhancer", "Generator", "Discriminator", "MappingNetwork", "truncate"]
