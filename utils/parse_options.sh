#!/usr/bin/env bash
# Command-line options for recipe scripts, Kaldi style. Source it AFTER setting the defaults:
#
#   stage=0 stop_stage=100 nj=4
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# Then `--stop-stage 5`, `--stop_stage 5` and `--stop-stage=5` all set stop_stage=5. Only variables
# that already exist can be set, so a mistyped option is an error (exit 1), not a silent no-op.
# A variable whose default is true/false only accepts true/false. `--config FILE` reads a file of
# `--opt value` lines (# starts a comment); options given on the command line win over it,
# whatever their order. `--help`/`-h` prints $help_message and exits 0. Option parsing stops at
# the first argument that is not an option (or after `--`); the rest stay in "$@".

__po_die() {
  echo "${0##*/}: $*" >&2
  [ -n "${help_message:-}" ] && echo "Run '${0##*/} --help' for usage." >&2
  exit 1
}

# __po_set <option-as-given> <value>: assign to the existing variable named by the option.
__po_set() {
  local opt=$1 val=$2 name
  name=${opt#--}
  name=${name//-/_}
  if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    __po_die "invalid option name '$opt'"
  fi
  case $name in
    help_message|__po_*) __po_die "invalid option '$opt'" ;;
  esac
  if [[ ! -v $name ]]; then
    __po_die "unknown option '$opt' (no variable '$name' in this script)"
  fi
  local old=${!name}
  if [[ $old == true || $old == false ]] && [[ $val != true && $val != false ]]; then
    __po_die "option '$opt' takes true or false, got '$val'"
  fi
  printf -v "$name" '%s' "$val"
}

# __po_read_config <file>: apply `--opt value` / `--opt=value` lines.
__po_read_config() {
  local file=$1 line opt val lineno=0
  [ -f "$file" ] || __po_die "config file '$file' not found"
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}                         # comments
    line="${line#"${line%%[![:space:]]*}"}"  # leading blanks
    line="${line%"${line##*[![:space:]]}"}"  # trailing blanks
    [ -z "$line" ] && continue
    if [[ $line =~ ^(--[^=[:space:]]+)=(.*)$ ]] || [[ $line =~ ^(--[^[:space:]]+)[[:space:]]+(.*)$ ]]; then
      opt=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
    else
      __po_die "$file:$lineno: expected '--option value', got '$line'"
    fi
    if [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]]; then val=${BASH_REMATCH[1]}; fi  # quoted value
    [ "$opt" = "--config" ] && __po_die "$file:$lineno: nested --config is not supported"
    __po_set "$opt" "$val"
  done < "$file"
}

# First pass: find the options (up to the first positional) and apply the config files.
__po_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%b\n' "$help_message"; else echo "Usage: ${0##*/} [options] (no help_message defined)"; fi
      exit 0 ;;
    --) shift; break ;;
    --config=*) __po_read_config "${1#--config=}"; shift ;;
    --config)
      [ $# -ge 2 ] || __po_die "option '--config' needs a value"
      __po_read_config "$2"; shift 2 ;;
    --*=*) __po_opts+=("${1%%=*}" "${1#*=}"); shift ;;
    --?*)
      [ $# -ge 2 ] || __po_die "option '$1' needs a value"
      __po_opts+=("$1" "$2"); shift 2 ;;
    -[0-9]*) break ;;
    -?*) __po_die "unknown option '$1' (options are --name value)" ;;
    *) break ;;
  esac
done

# Second pass: command-line options, overriding any config file.
for ((__po_i = 0; __po_i < ${#__po_opts[@]}; __po_i += 2)); do
  __po_set "${__po_opts[__po_i]}" "${__po_opts[__po_i + 1]}"
done
unset __po_opts __po_i
unset -f __po_set __po_read_config __po_die
true
