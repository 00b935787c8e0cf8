#!/usr/bin/env bash
# Runs rollgen's test suite (the slow end-to-end `dvc repro` test included), building .venv first if needed.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import rollgen, pytest" 2>/dev/null; then
  bash scripts/setup.sh --no-repro
fi
# shellcheck disable=SC1091
source .venv/bin/activate  # the end-to-end test runs `dvc` and `python` from this environment
exec python -m pytest "$@"
