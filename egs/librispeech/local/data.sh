#!/usr/bin/env bash
# egs/librispeech corpus specifics.
# Stage 0: download LibriSpeech subsets and the noise corpus (resumable, MD5-verified), unless
#          --librispeech_root / --noise_root point at local copies.
# Stage 1: Kaldi data dirs data/<subset with _> from the standard LibriSpeech layout.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh:${BASH_LINENO[0]}) $*" >&2; }

stage=0
stop_stage=1
nj=4
subsets="train-clean-100 dev-clean test-clean test-other"
librispeech_root=""     # folder holding LibriSpeech/<subset>; empty: download into ${download_dir}
noise_root=""           # folder holding musan/; empty: download MUSAN into ${download_dir}
noise_corpus=musan
download_dir=downloads
base_url=""             # a mirror of the OpenSLR folders (files keep their published names and MD5s)
datadir=data

help_message="Usage: $0 [--librispeech_root DIR] [--noise_root DIR] [--subsets \"...\"] [--download_dir DIR] [--base_url URL]"
. ./path.sh
. utils/parse_options.sh

mirror=(); [ -n "${base_url}" ] && mirror=(--base-url "${base_url}")
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  if [ -z "${librispeech_root}" ]; then
    res=(); for s in ${subsets}; do res+=("librispeech/${s}"); done
    log "stage 0: downloading ${res[*]} to ${download_dir}"
    specenh download "${res[@]}" --download-dir "${download_dir}" "${mirror[@]}"
  else
    log "stage 0: LibriSpeech at ${librispeech_root}; nothing to download"
  fi
  if [ -z "${noise_root}" ]; then
    log "stage 0: downloading noise corpus ${noise_corpus} to ${download_dir}"
    specenh download "noise/${noise_corpus}" --download-dir "${download_dir}" "${mirror[@]}"
  else
    log "stage 0: noise corpus at ${noise_root}; link it as ${download_dir}/musan for conf/degrade/musan_*.yaml"
    mkdir -p "${download_dir}"; [ -e "${download_dir}/musan" ] || ln -s "$(cd "${noise_root}" && pwd)/musan" "${download_dir}/musan"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  root=${librispeech_root:-${download_dir}}
  log "stage 1: data dirs for ${subsets} from ${root}"
  specenh prepare-librispeech --root "${root}" --out-dir "${datadir}" --subsets ${subsets}
fi
