#!/usr/bin/env bash
# egs/mini corpus specifics: the embedded synthetic corpus (espeak-ng voices, self-written text).
# Stage 0: nothing to download. Stage 1: generate data/{train,dev,test} and their wavs.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh:${BASH_LINENO[0]}) $*" >&2; }

stage=0
stop_stage=1
nj=2
seed=0
num_train=3000
num_dev=200
num_test=300
datadir=data
wavdir=dump/wav/mini

help_message="Usage: $0 [--stage 0] [--stop-stage 1] [--nj N] [--seed N] [--num_train N] [--num_dev N] [--num_test N]"
. ./path.sh
. utils/parse_options.sh

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  log "stage 0: the mini corpus is generated locally; nothing to download"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "stage 1: synthesising the mini corpus (seed ${seed}: ${num_train}/${num_dev}/${num_test} utterances)"
  specenh prepare-mini --out-dir "${datadir}" --wav-dir "${wavdir}" --seed "${seed}" \
    --num-train "${num_train}" --num-dev "${num_dev}" --num-test "${num_test}" --nj "${nj}"
fi
