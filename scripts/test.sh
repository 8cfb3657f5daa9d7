#!/usr/bin/env bash
# The project's test command (README, CI): lint, the import layering (pyproject.toml's importlinter
# contracts), then the test suite. Non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
PY="$HERE/.venv/bin/python"
[[ -x "$PY" ]] || { echo "no .venv: run scripts/setup.sh first" >&2; exit 2; }
"$PY" -m ruff check .
layers=$("$HERE/.venv/bin/lint-imports" --no-cache) || { echo "$layers"; exit 1; }
echo "import layering: ${layers##*$'\n'}"
"$PY" -m pytest -m "not slow" -q "$@"
