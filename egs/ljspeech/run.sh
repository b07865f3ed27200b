#!/usr/bin/env bash
# egs/ljspeech: a second real corpus (single speaker, 22.05 kHz read speech), added the way the
# README's "Adding a corpus" says: only local/data.sh and these settings are corpus-specific.
# Usage: ./run.sh --local_data_opts "--ljspeech_root /path/to/LJSpeech-1.1" [--stage N] [--stop-stage N]
#        (without --ljspeech_root, stage 0 downloads the corpus)
set -euo pipefail

exec ./specenh.sh \
  --train_set train --valid_set dev --test_sets test \
  --train_conditions "noise_0db noise_5db noise_10db bandlimit_2k holes30 codec_mulaw8k reverb" \
  --test_conditions "noise_0db noise_5db noise_10db noise_20db bandlimit_1k bandlimit_2k bandlimit_4k holes30 codec_mulaw8k reverb" \
  --asr_model train --asr_config conf/asr/conformer_ctc_mini.yaml \
  --frontends "identity oracle" \
  "$@"
