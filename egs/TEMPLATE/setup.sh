#!/usr/bin/env bash
# Start a new recipe: egs/TEMPLATE/setup.sh egs/<corpus> [--from <recipe>]
# Links the shared driver and helpers (specenh.sh, cmd.sh, path.sh, utils) and copies what a recipe owns
# from an existing one (default: realspeech): run.sh, local/data.sh, conf/. Edit local/data.sh (stage 1 writes
# data/<set>/{wav.scp,text,utt2spk}) and run.sh (sets, conditions, --asr_model, front-ends), then ./run.sh.
set -euo pipefail

usage="Usage: $0 egs/<corpus> [--from <recipe under egs/, default realspeech>]"
[ $# -ge 1 ] || { echo "${usage}" >&2; exit 1; }
case "$1" in -h|--help) echo "${usage}"; exit 0 ;; esac
dir=$1; shift
from=realspeech
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || { echo "--from needs a recipe name (${usage})" >&2; exit 1; }; from=$2; shift 2 ;;
    *) echo "unknown option '$1' (${usage})" >&2; exit 1 ;;
  esac
done

template=$(cd "$(dirname "$0")" && pwd)
egs=$(dirname "${template}")
src=${egs}/${from}
if [ ! -f "${src}/run.sh" ] || [ ! -d "${src}/conf" ]; then
  recipes=$(cd "${egs}" && ls -d -- */run.sh | sed 's#/run.sh##' | tr '\n' ' ')
  echo "--from ${from}: ${src} is not a recipe (no run.sh or conf/); recipes: ${recipes}" >&2
  exit 1
fi
[ -e "${dir}" ] && { echo "${dir} exists; not touching it (pick a new name, or remove it first)" >&2; exit 1; }
parent=$(cd "$(dirname "${dir}")" 2>/dev/null && pwd) || { echo "$(dirname "${dir}"): no such folder" >&2; exit 1; }
[ "${parent}" = "${egs}" ] \
  || { echo "${dir}: a recipe lives directly under ${egs} (the links are relative)" >&2; exit 1; }

mkdir -p "${dir}/local"
for f in specenh.sh cmd.sh path.sh; do ln -s "../TEMPLATE/${f}" "${dir}/${f}"; done
ln -s ../../utils "${dir}/utils"
cp "${src}/run.sh" "${dir}/run.sh"
cp -r "${src}/conf" "${dir}/conf"
cp "${src}/local/data.sh" "${dir}/local/data.sh"
name=$(basename "${dir}")
cat > "${dir}/README.md" <<EOF
# egs/${name}

Started from egs/${from} with \`egs/TEMPLATE/setup.sh\`. To make it this corpus's recipe:

1. \`local/data.sh\`: stage 1 writes \`data/<set>/{wav.scp,text,utt2spk}\` (\`utils/validate_data_dir.sh\` must
   pass); best through a typed \`prepare_<corpus>()\` in \`specenh/data/\` with a thin CLI.
2. \`run.sh\`: set names, training/test conditions, \`--asr_model\`, front-ends, \`--local_data_opts\`.
3. \`conf/\`: keep the degradations and front-end configs you use; a front-end config may start from
   another with \`base:\`.

Then \`./run.sh\` (\`./run.sh --help\` lists every option; \`--stage N --stop-stage M\` runs a part).
EOF
echo "created ${dir} from egs/${from}: edit ${dir}/local/data.sh and ${dir}/run.sh, then cd ${dir} && ./run.sh"
