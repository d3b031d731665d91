"""The child process of benchmarks/store_scale.py: builds one synthetic store, or forgets
one user in it with training mocked out, and prints its timings as one JSON line.

    python benchmarks/store_scale_worker.py build STORE SAMPLES
    python benchmarks/store_scale_worker.py forget STORE USER

Run with PYTHONPATH at the apa-console checkout being measured; it uses only store API
calls that the pre-segment layout has too, so both layouts build the same store.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

from apa_console.prompting import MOVIE_INSTRUCTION, answer_text, build_input
from apa_console.samples import SPLITS, HistoryEntry
from apa_console.store import audit, records
from apa_console.store.document import Store, update_meta

SAMPLES_PER_USER = 165  # MovieLens-1M: about a million ratings over 6,040 users
ITEMS = 3_706
HISTORY = 10  # TALLRec's history length
SHARDS = 10
EMBEDDING_DIM = 64  # stand-in hidden states: small, so the build stays well under 4 GiB
SEED = 0


def _titles(rng: random.Random) -> list[str]:
    words = ["Night", "River", "Star", "Last", "City", "Love", "War", "Dream", "Road",
             "Ghost", "Summer", "King", "Stone", "Secret", "Island", "Silent", "Blue"]
    return [f"{' '.join(rng.sample(words, rng.randint(1, 4)))} {i} ({rng.randint(1930, 2000)})"
            for i in range(ITEMS)]


def synthetic_rows(samples: int) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """TALLRec-shaped sample rows (10-item history, its prompt text, Yes/No), users with a
    skewed number of samples each, cut 80/10/10 in order; and the per-user split counts."""
    rng = random.Random(SEED)
    titles = _titles(rng)
    n_users = max(2, samples // SAMPLES_PER_USER)
    weights = [1.0 / (rank + 20) for rank in range(n_users)]
    owners = rng.choices(range(n_users), weights=weights, k=samples)
    # history entries are shared dicts (as a parser interning them would): memory, not text
    pool = {(item, liked): {"item": str(item + 1), "title": titles[item], "liked": liked}
            for item in range(ITEMS) for liked in (True, False)}
    train_end, valid_end = int(samples * 0.8), int(samples * 0.9)
    rows, counts = [], {}
    for order, owner in enumerate(owners):
        history = [pool[(rng.randrange(ITEMS), rng.random() < 0.6)] for _ in range(HISTORY)]
        target = rng.randrange(ITEMS)
        label = int(rng.random() < 0.55)
        split = "train" if order < train_end else "valid" if order < valid_end else "test"
        user = f"u{owner + 1}"
        entries = (HistoryEntry(h["item"], h["title"], h["liked"]) for h in history)
        rows.append({"id": f"s{order:07d}", "user_id": user, "target_item": str(target + 1),
                     "target_title": titles[target], "label": label, "split": split,
                     "instruction": MOVIE_INSTRUCTION,
                     "input": build_input(entries, titles[target]),
                     "output": answer_text(label), "history": history, "order": order})
        counts.setdefault(user, dict.fromkeys(SPLITS, 0))[split] += 1
    return rows, counts


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _fake_adapter(store: Store, shard: int, version: int, sample_ids: list[str],
                  n_valid: int) -> dict:
    """A live shard-adapter row whose files are stand-ins (no model is trained)."""
    from apa_console.engine.training import manifest_hash

    name = f"shard-{shard}-v{version}"
    weights = store.path_of(f"adapters/{name}") / "adapter_model.safetensors"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(f"stand-in weights of {name}".encode())
    errors = np.random.default_rng(shard * 100 + version).random(n_valid, dtype=np.float32)
    return {"id": name, "kind": records.SHARD, "shard": shard, "version": version,
            "path": f"adapters/{name}", "sha256": f"{shard:02d}{version:02d}" + "0" * 60,
            "manifest_hash": manifest_hash(sample_ids), "sample_count": len(sample_ids),
            "settings": {"seed": shard, "lr": 1e-3, "epochs": 1}, "wall_time_s": 0.0,
            "valid_errors": store.write_array(f"verr-{name}", errors),
            "valid_error_mean": float(errors.mean()), "status": records.LIVE}


def _embedding_entry(store: Store, split: str, ids: list[str], users: list[str],
                     vectors: np.ndarray) -> dict:
    """The split's cached vectors as the measured code lays them out: user-bucketed parts,
    or one array in code from before them."""
    try:
        from apa_console.store import embedding_parts
    except ImportError:
        return {"file": store.write_array(f"emb-{split}", vectors), "ids": ids}
    return embedding_parts.write_split(store.path_of, split, ids, users, vectors)


def build(root: Path, samples: int) -> dict:
    started = time.perf_counter()
    rows, counts = synthetic_rows(samples)
    generate_s = time.perf_counter() - started
    store = Store.create(root)

    def ingest() -> None:
        with store.transaction() as db:
            records.insert_dataset(db, rows, counts)
            update_meta(db, dataset={"name": "synthetic-tallrec", "domain": "movie",
                                     "users": len(counts)})
            audit.append(db, "ingest", {"dataset": "synthetic-tallrec", "samples": samples})

    ingest_s = _timed(ingest)
    by_split = {split: [r["id"] for r in rows if r["split"] == split] for split in SPLITS}
    owners = {split: [r["user_id"] for r in rows if r["split"] == split] for split in SPLITS}
    # a user-level partition (apa-user's shape): each user's training samples in one shard,
    # users dealt to the emptiest shard, largest first
    train_of: dict[str, list[str]] = {}
    for row in rows:
        if row["split"] == "train":
            train_of.setdefault(row["user_id"], []).append(row["id"])
    shards: list[dict] = [{"shard": k, "sample_ids": [], "users": []} for k in range(SHARDS)]
    for user in sorted(train_of, key=lambda u: (-len(train_of[u]), u)):
        emptiest = min(shards, key=lambda s: (len(s["sample_ids"]), s["shard"]))
        emptiest["sample_ids"].extend(train_of[user])
        emptiest["users"].append(user)
    for shard in shards:
        shard["sample_ids"].sort()
        shard.update(size=len(shard["sample_ids"]), users=sorted(shard["users"]), centre=None)
    rows.clear()  # the store holds them now: free the memory for the partition step
    vectors = np.random.default_rng(SEED)

    def partition_and_train() -> None:
        embeddings = {split: _embedding_entry(store, split, ids, owners[split], vectors.random(
                          (len(ids), EMBEDDING_DIM), dtype=np.float32))
                      for split, ids in by_split.items()}
        adapters = [_fake_adapter(store, s["shard"], 1, s["sample_ids"], len(by_split["valid"]))
                    for s in shards]
        with store.transaction() as db:
            records.replace_shards(db, shards)
            update_meta(db, embeddings=embeddings, partition={
                "method": "apa-user", "shards": SHARDS, "cap": None,
                "train_samples": len(by_split["train"])})
            records.commit_adapters(db, adapters)

    partition_s = _timed(partition_and_train)
    ranked = sorted(train_of, key=lambda u: (len(train_of[u]), u))
    return {"users": len(counts), "generate_s": round(generate_s, 2),
            "ingest_s": round(ingest_s, 2), "partition_and_adapters_s": round(partition_s, 2),
            "apa_json_mb": round(store.file.stat().st_size / 2**20, 3),
            "median_user": ranked[(len(ranked) - 1) // 2],
            "build_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def forget(root: Path, user: str) -> dict:
    from apa_console.unlearning import forget as pipeline
    from apa_console.unlearning.forget import apply_pending
    from apa_console.unlearning.requests import submit
    from apa_console.unlearning.targets import Targets

    store = Store.open(root)
    timings: dict[str, float] = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return run

    def mocked_retrain(store, backbone, shards, progress, cancel, dispatch=None):
        """Stands for training: new stand-in adapters on the remaining manifests."""
        db = store.snapshot()
        withdrawn = {row["shard"]: row for row in records.withdrawn_adapters(db)}
        manifests = {row["shard"]: row["sample_ids"] for row in records.shard_rows(db)}
        n_valid = sum(row["counts"]["valid"] for row in db.table("users"))
        return [_fake_adapter(store, k, withdrawn[k]["version"] + 1, manifests[k], n_valid)
                for k in shards if k in withdrawn], []

    pipeline.purge = timed("purge_s", pipeline.purge)
    # the swap's centres, outside both commits (older code rebuilt them inside the purge,
    # so it reports 0 here)
    if hasattr(pipeline, "member_centres"):
        pipeline.member_centres = timed("centres_s", pipeline.member_centres)
    pipeline._swap_and_receipt = timed("swap_s", pipeline._swap_and_receipt)
    pipeline._retrain_shards = timed("mocked_training_s", mocked_retrain)
    queue_s = _timed(lambda: submit(store, Targets(users=[user])))
    apply_s = _timed(lambda: apply_pending(store, None))
    (request,) = records.request_rows(store.snapshot())
    assert request["status"] == records.DONE and not records.has_user(store.snapshot(), user)
    commits = timings["purge_s"] + timings["swap_s"]
    return {"user": user, "shards": request["affected_shards"],
            "removed": request["removed"], "queue_s": round(queue_s, 3),
            "purge_s": round(timings["purge_s"], 3), "swap_s": round(timings["swap_s"], 3),
            "commits_s": round(commits, 3),
            "centres_s": round(timings.get("centres_s", 0.0), 3),
            "mocked_training_s": round(timings["mocked_training_s"], 3),
            "apply_s_without_training": round(apply_s - timings["mocked_training_s"], 3),
            "apa_json_mb_after": round(store.file.stat().st_size / 2**20, 3),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("build", "forget"):
        print(__doc__, file=sys.stderr)
        return 2
    command, root, value = argv
    result = build(Path(root), int(value)) if command == "build" else forget(Path(root), value)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
