#!/usr/bin/env bash
# Run the whole test suite (unit, CLI, TUI, and the integration tests on the real model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-venv.sh
# The TUI's terminal test drives the real app in tmux; without tmux it skips.
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 \
    || echo "tmux could not be installed: the tmux TUI test will be skipped" >&2
fi
# The layers of ARCHITECTURE.md as import-linter contracts (pyproject.toml).
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
