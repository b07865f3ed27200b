#!/usr/bin/env bash
# Repair a Kaldi data dir in place: keep utterances present and usable in every file, drop empty
# transcripts and missing audio (--check-audio: also unreadable, truncated, empty, NaN or silent
# audio), sort in C order, rebuild spk2utt. Originals go to <dir>/.backup/.
# Usage: utils/fix_data_dir.sh [--check-audio] [--subsampling N] <data-dir>
# Needs the specenh environment (run after path.sh / venv activation). $PYTHON overrides python3.
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,6s/^# \{0,1\}//p' "$0"
  [ $# -ge 1 ] && exit 0 || exit 1
fi
exec "${PYTHON:-python3}" -m specenh.data.cli fix-data-dir "$@"
