"""The stage layer: what a recipe does with trained front-ends (stages 5 and 7), the two ``enhance``
commands, and the driver's preflight.

- :mod:`specenh.stages.batch_enhancer`: the one batch enhancer every stage uses (a front-end gets the
  extra inputs it declares through :meth:`specenh.frontends.base.FrontEnd.extra_inputs`);
- :mod:`specenh.stages.decode` / :mod:`specenh.stages.decode_merge`: stage 5 (enhance, decode with the
  frozen ASR, choose among candidates, merge and score);
- :mod:`specenh.stages.resynth`: stage 7 (resynthesis to waveform, signal metrics, spectrogram panels);
- :mod:`specenh.stages.enhance_feats`: ``specenh enhance``, a front-end's enhanced features as a new
  feature dir;
- :mod:`specenh.stages.enhance_audio`: ``specenh enhance-audio``, a front-end on the user's own audio
  files (the same choice as stage 5);
- :mod:`specenh.stages.preflight`: the checks the recipe driver runs before any stage;
- :mod:`specenh.stages.cli`: their subcommands.

Data flows one way: stage-3 features -> front-end -> frozen ASR / vocoder -> scores; nothing here is
imported by the modules below it (data, degrade, features, frontends, asr, train, metrics).
"""
