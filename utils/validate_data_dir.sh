#!/usr/bin/env bash
# Check a Kaldi data dir; exit non-zero (listing every problem: file, line, utterance) if malformed.
# Usage: utils/validate_data_dir.sh [--no-text] [--check-audio] [--no-check-sorted] [--subsampling N] <data-dir>
# Needs the specenh environment (run after path.sh / venv activation). $PYTHON overrides python3.
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,4s/^# \{0,1\}//p' "$0"
  [ $# -ge 1 ] && exit 0 || exit 1
fi
exec "${PYTHON:-python3}" -m specenh.data.cli validate-data-dir "$@"
