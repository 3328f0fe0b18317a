# Puts asrkit on PATH: the repository's .venv (made by `make install`) unless asrkit is already there.
__recipe_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v asrkit >/dev/null 2>&1 && [ -x "$__recipe_root/.venv/bin/asrkit" ]; then
  export PATH="$__recipe_root/.venv/bin:$PATH"
fi
command -v asrkit >/dev/null 2>&1 || { echo "asrkit not found: run 'make install' in $__recipe_root" >&2; exit 1; }
export LC_ALL=C
export PYTHONUNBUFFERED=1
unset __recipe_root
