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
# Two workers (CI has 2 cores; ARAS_TEST_WORKERS overrides, 0 = one process), each running whole files
# (--dist loadfile: a file's module fixtures and session tallies such as test_top_tb.py's per-rule table stay
# in one process). Tables tests emit are printed in the summary (verif/conftest.py).
WORKERS=${ARAS_TEST_WORKERS:-2}
"$PY" -m pytest -m "not slow" -q -n "$WORKERS" --dist loadfile "$@"
