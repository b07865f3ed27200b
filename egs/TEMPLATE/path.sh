# Environment for recipes: the project's virtual environment (tools/install.sh) and utils/ on PATH.
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MAIN_ROOT
if [ -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "${MAIN_ROOT}/tools/venv/bin/activate"
elif ! command -v specenh >/dev/null 2>&1; then
  echo "path.sh: ${MAIN_ROOT}/tools/venv not found and 'specenh' not on PATH: run tools/install.sh" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH=${MAIN_ROOT}/utils:${PATH}
export PYTHONUNBUFFERED=1
export LC_ALL=C
