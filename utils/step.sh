# shellcheck shell=bash
# step NAME CMD...: one step of a recipe with a done marker (sourced by egs/TEMPLATE/specenh.sh).
#
# Runs CMD unless ${done_dir}/NAME.done holds the fingerprint of this very command: its words and the bytes
# of the config files it names (python -m specenh.utils.done fingerprint; the same convention as the Python
# jobs' markers). A marker of another command or config is redone, with a log line; --overwrite true
# (overwrite=true) redoes every step. The marker is written only after CMD succeeded. step_inputs="FILE..."
# (set for one call: step_inputs="d/wav.scp d/text" step NAME CMD) adds files CMD reads to the fingerprint
# by size and time, so a step over a data dir reruns when the data dir was rewritten.
# Needs: done_dir, overwrite; uses log() when the caller defines it.
step() {
  local name=$1; shift
  local marker=${done_dir}/${name}.done fp
  # shellcheck disable=SC2086  # step_inputs: a space-separated list of files
  fp=$(python -m specenh.utils.done fingerprint ${step_inputs:+--inputs ${step_inputs}} -- "$@")
  if [ -f "${marker}" ] && [ "${overwrite:-false}" != true ]; then
    if [ "$(cut -d' ' -f1 "${marker}")" = "${fp}" ]; then
      _step_log "  skip ${name} (done; --overwrite true to redo)"; return 0
    fi
    _step_log "  redo ${name}: done before with another command or config"
  fi
  rm -f "${marker}"
  _step_log "  run  ${name}"
  local rc=0
  "$@" || rc=$?
  if [ "${rc}" -ne 0 ]; then  # show the end of every failed job's log (Kaldi-style log args: x.JOB.log)
    local a l
    for a in "$@"; do
      case "${a}" in *.log)
        for l in ${a//JOB/*}; do
          if [ -f "${l}" ] && ! grep -q "^# Ended (code 0)" "${l}"; then
            _step_log "  ${name} failed; the end of ${l}:"; tail -n 15 "${l}" | sed 's/^/    | /' >&2
          fi
        done ;;
      esac
    done
    return "${rc}"
  fi
  mkdir -p "$(dirname "${marker}")"; echo "${fp} $(date '+%FT%T')" > "${marker}"
}

_step_log() { if declare -F log > /dev/null; then log "$@"; else echo "$*" >&2; fi; }
