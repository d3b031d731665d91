#!/usr/bin/env bash
# Run the whole test suite (unit, CLI, TUI, and the integration tests on the real model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-venv.sh
exec .venv/bin/python -m pytest -q "$@"
