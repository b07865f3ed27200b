#!/usr/bin/env bash
# egs/mini: synthetic multi-voice speech (espeak-ng), a reference Conformer-CTC trained here (the
# frozen ASR), degradations it never saw, and front-ends that try to bring its WER back. CPU, minutes.
# Usage: ./run.sh [--stage N] [--stop-stage N] [--nj N] [--frontends all] [... any option of specenh.sh]
set -euo pipefail

# front-end training pairs are made on the fly from the clean audio (--train_data online: stages 2-3 degrade
# only a 100-utterance validation subset under the training conditions; README "Online training data").
# babble 5 dB on its own too (train/dev talkers), besides the mixed noise_*dB conditions (a quarter babble)
train_conditions="noise_0db noise_5db noise_10db noise_babble_5db bandlimit_2k holes30 codec_mulaw8k reverb"
test_conditions="noise_0db noise_5db noise_10db noise_20db noise_white_5db noise_babble_5db bandlimit_1k bandlimit_2k bandlimit_4k holes30 codec_mulaw8k reverb griffinlim32"

exec ./specenh.sh \
  --nj 2 \
  --train_set train --valid_set dev --test_sets test \
  --train_conditions "${train_conditions}" \
  --test_conditions "${test_conditions}" \
  --asr_model train --asr_config conf/asr/conformer_ctc_mini.yaml \
  --train_data online \
  --frontends "identity oracle stylegan" \
  --resynth_max_utts 10 \
  "$@"
