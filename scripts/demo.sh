#!/usr/bin/env bash
# The demo, end to end, on the embedded demo dataset; the store is ./demo-store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-venv.sh
export APA_STORE="${APA_STORE:-$PWD/demo-store}"
apa() { .venv/bin/apa-console "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$APA_STORE"
step "create a store at $APA_STORE"
apa init
step "ingest the generated demo dataset"
apa ingest demo
apa status
step "users with the most samples"
apa users --limit 5
first_user="$(apa users --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
step "one user's samples"
apa user show "$first_user" --limit 3
