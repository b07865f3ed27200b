"""The stage layer: what a recipe's stages 5 and 7 (and ``specenh enhance``) do with trained front-ends.

- :mod:`specenh.stages.enhancer`: the one batch enhancer every stage uses (a front-end gets the extra
  inputs it declares through :meth:`specenh.frontends.base.FrontEnd.extra_inputs`);
- :mod:`specenh.stages.decode` / :mod:`specenh.stages.decode_merge`: stage 5 (enhance, decode with the
  frozen ASR, merge and score);
- :mod:`specenh.stages.enhance`: a front-end's enhanced features as a new feature dir;
- :mod:`specenh.stages.resynth`: stage 7 (resynthesis to waveform, signal metrics, spectrogram panels);
- :mod:`specenh.stages.cli`: their subcommands (``decode``, ``enhance``, ``resynth``, ``panel``).

Data flows one way: stage-3 features -> front-end -> frozen ASR / vocoder -> scores; nothing here is
imported by the modules below it (data, degrade, features, frontends, asr, train, metrics).
"""
