#!/usr/bin/env bash
# The project's test command (README, CI): lint, then the test suite. Non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
PY="$HERE/.venv/bin/python"
[[ -x "$PY" ]] || { echo "no .venv: run scripts/setup.sh first" >&2; exit 2; }
"$PY" -m ruff check .
"$PY" -m pytest -m "not slow" -q "$@"
