#!/usr/bin/env bash
# egs/ljspeech corpus specifics. Stage 0: download LJSpeech-1.1 unless --ljspeech_root is given.
# Stage 1: data/{train,dev,test} from metadata.csv (normalised text column), split by position.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh:${BASH_LINENO[0]}) $*" >&2; }

stage=0
stop_stage=1
nj=4
ljspeech_root=""        # an existing LJSpeech-1.1 folder (metadata.csv, wavs/); empty: download
download_dir=downloads
num_dev=100
num_test=500
datadir=data

help_message="Usage: $0 [--ljspeech_root DIR] [--num_dev N] [--num_test N] [--stage 0] [--stop-stage 1]"
. ./path.sh
. utils/parse_options.sh

root=${ljspeech_root:-${download_dir}/LJSpeech-1.1}
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  if [ -n "${ljspeech_root}" ]; then
    log "stage 0: using local LJSpeech at ${ljspeech_root}; nothing to download"
  else
    log "stage 0: downloading LJSpeech-1.1 to ${download_dir} (resumable)"
    specenh download ljspeech --download-dir "${download_dir}"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "stage 1: data dirs from ${root}"
  specenh prepare-ljspeech --root "${root}" --out-dir "${datadir}" --num-dev "${num_dev}" --num-test "${num_test}"
fi
