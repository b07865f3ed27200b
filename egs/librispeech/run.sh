#!/usr/bin/env bash
# egs/librispeech: LibriSpeech + MUSAN noise, the pretrained NeMo Conformer-CTC as the frozen ASR,
# front-ends trained on train-clean-100 under degradations the ASR never saw. GPU cluster sized.
# Usage: ./run.sh [--stage N] [--stop-stage N] [--ngpu N] [--cmd slurm] [--asr_model NAME|PATH.nemo]
#        ./run.sh --local_data_opts "--librispeech_root /data --noise_root /data/noise"   (local copies)
#        sbatch --gres=gpu:1 -c 16 --mem 64G run.sh --ngpu 1 --device cuda                (one allocation)
set -euo pipefail

exec ./specenh.sh \
  --nj 16 \
  --train_set train_clean_100 --valid_set dev_clean --test_sets "test_clean test_other" \
  --train_conditions "musan_0db musan_5db musan_10db bandlimit_2k holes30 codec_mulaw8k reverb" \
  --test_conditions "musan_m5db musan_0db musan_5db musan_10db musan_20db bandlimit_1k bandlimit_2k bandlimit_4k holes30 codec_mulaw8k reverb" \
  --asr_model stt_en_conformer_ctc_small \
  --frontends "identity oracle stylegan mask inpaint bwe specsub wiener" \
  "$@"
