"""Every query and update of the store's tables, and every status word, in one place.

Readers pass a snapshot (`Store.snapshot()`); writers pass the TinyDB of their open
transaction, so an update commits with the rest of the change or not at all.
"""

from __future__ import annotations

from typing import Any

from tinydb import TinyDB

from apa_console.samples import Sample
from apa_console.store import id_lists, sample_segments
from apa_console.store.document import get_meta, now_iso

# Adapter kinds and states. A replaced or retired row keeps its hashes, not its files.
SHARD = "shard"
BASELINE = "baseline"
LIVE = "live"
# Trained on data a forget has purged: out of serving at once, files deleted; its seed and
# settings stay so the retrain can rebuild it, and the swap replaces it.
WITHDRAWN = "withdrawn"
RETIRED = "retired"
REPLACED = "replaced"
# Forget request states: queued or interrupted requests are open until `apply` finishes them.
PENDING = "pending"
RUNNING = "running"
DONE = "done"
CANCELLED = "cancelled"  # withdrawn by the operator before its purge: nothing was removed
OPEN_REQUEST_STATES = (PENDING, RUNNING)

# -- samples and users ---------------------------------------------------------------------


def sample_rows(db: TinyDB) -> list[dict[str, Any]]:
    """Every sample row in ingest order (segments hold them by user); reads every segment,
    so only whole-store work calls it."""
    return sorted(sample_segments.all_rows(db), key=lambda row: row["order"])


def samples_by_id(db: TinyDB) -> dict[str, Sample]:
    return {row["id"]: Sample.from_record(row) for row in sample_rows(db)}


def split_samples(db: TinyDB, split: str) -> list[Sample]:
    """The samples of one split in ingest order."""
    rows = [row for row in sample_rows(db) if row["split"] == split]
    return [Sample.from_record(row) for row in sorted(rows, key=lambda row: row["order"])]


def user_sample_rows(db: TinyDB, user: str, split: str | None = None) -> list[dict[str, Any]]:
    """One user's sample rows in ingest order (reads only their segment)."""
    rows = [row for row in sample_segments.user_rows(db, user)
            if split is None or row["split"] == split]
    return sorted(rows, key=lambda row: row["order"])


def has_samples(db: TinyDB) -> bool:
    return sample_segments.has_rows(db)


def sample_counts(db: TinyDB) -> tuple[dict[str, int], dict[str, int]]:
    """(samples per split, positive labels per split), without reading any sample."""
    return sample_segments.counts(db)


def user_ids(db: TinyDB) -> set[str]:
    return {row["id"] for row in db.table("users")}


def user_row(db: TinyDB, user: str) -> dict[str, Any] | None:
    rows = db.table("users").search(lambda row: row["id"] == user)
    return rows[0] if rows else None


def has_user(db: TinyDB, user: str) -> bool:
    return user_row(db, user) is not None


def insert_dataset(db: TinyDB, samples: list[dict], user_counts: dict[str, dict]) -> None:
    sample_segments.add_rows(db, samples)
    db.table("users").insert_multiple(
        {"id": user_id, "counts": counts} for user_id, counts in user_counts.items()
    )


def remove_samples(db: TinyDB, owners: dict[str, str], splits: tuple[str, ...]) -> None:
    """Delete the samples (`owners`: sample id → its user), recount their users, and drop
    users left with none. Only the owners' segments are read and rewritten."""
    sample_segments.remove_rows(db, owners)
    users = db.table("users")
    for user in set(owners.values()):
        counts = {split: 0 for split in splits}
        for row in sample_segments.user_rows(db, user):
            counts[row["split"]] += 1
        if sum(counts.values()):
            users.update({"counts": counts}, lambda row, u=user: row["id"] == u)
        else:
            users.remove(lambda row, u=user: row["id"] == u)


# -- shards ----------------------------------------------------------------------------------


def shard_summaries(db: TinyDB) -> list[dict[str, Any]]:
    """Shard rows without their manifests (size and users are in apa.json; cheap)."""
    return sorted(db.table("shards").all(), key=lambda row: row["shard"])


def shard_rows(db: TinyDB) -> list[dict[str, Any]]:
    """Shard rows with their `sample_ids` (reads every manifest segment)."""
    return [id_lists.shard_with_ids(db.store.path_of, row)  # type: ignore[attr-defined]
            for row in shard_summaries(db)]


def sample_shards(db: TinyDB) -> dict[str, int]:
    """sample id → shard, for every sample in a shard manifest."""
    return {sid: row["shard"] for row in shard_rows(db) for sid in row["sample_ids"]}


def user_sample_shards(db: TinyDB, user: str, sample_ids: list[str]) -> dict[str, int]:
    """sample id → shard for one user's samples, reading only the manifests of the shards
    that list the user."""
    found: dict[str, int] = {}
    for row in shard_summaries(db):
        if user in row["users"]:
            for sid in id_lists.shard_members_among(db.store.path_of,  # type: ignore[attr-defined]
                                                    row, sample_ids):
                found[sid] = row["shard"]
    return found


def embedding_entries(db: TinyDB) -> dict[str, dict[str, Any]]:
    """The cached embeddings, {split: {file, ids}} (ids read from their segments)."""
    return id_lists.embedding_entries(db.store.path_of,  # type: ignore[attr-defined]
                                      get_meta(db).get("embeddings"))


def user_shards(db: TinyDB) -> dict[str, list[int]]:
    """user id → the shards holding their training samples, in shard order."""
    found: dict[str, list[int]] = {}
    for row in shard_summaries(db):
        for user in row.get("users", []):
            found.setdefault(user, []).append(row["shard"])
    return found


def replace_shards(db: TinyDB, rows: list[dict[str, Any]]) -> None:
    db.drop_table("shards")
    db.table("shards").insert_multiple(rows)


def update_shard(db: TinyDB, shard: int, fields: dict[str, Any]) -> None:
    db.table("shards").update(fields, lambda row: row["shard"] == shard)


# -- adapters --------------------------------------------------------------------------------


def adapter_rows(db: TinyDB) -> list[dict[str, Any]]:
    return db.table("adapters").all()


def live_adapters(db: TinyDB, kind: str = SHARD) -> list[dict[str, Any]]:
    """Live adapters of one kind, by shard."""
    rows = [row for row in db.table("adapters")
            if row.get("status") == LIVE and row.get("kind") == kind]
    return sorted(rows, key=lambda row: (row.get("shard") is None, row.get("shard")))


def withdrawn_adapters(db: TinyDB) -> list[dict[str, Any]]:
    """Shard adapters out of serving until their forget's retrain swaps in, by shard."""
    rows = [row for row in db.table("adapters")
            if row.get("status") == WITHDRAWN and row.get("kind") == SHARD]
    return sorted(rows, key=lambda row: row["shard"])


def serving_state(row: dict[str, Any] | None) -> str:
    """How an adapter row takes part in serving, in the words every screen uses."""
    if row is None:
        return "not trained"
    if row.get("status") == LIVE:
        return "serving"
    if row.get("status") == WITHDRAWN:
        return f"withdrawn, retrain pending ({row.get('withdrawn_by') or '?'})"
    return str(row.get("status"))


def all_live_adapters(db: TinyDB) -> list[dict[str, Any]]:
    return [row for row in db.table("adapters") if row.get("status") == LIVE]


def next_adapter_version(db: TinyDB, kind: str, shard: int | None) -> int:
    versions = [row.get("version", 0) for row in db.table("adapters")
                if row.get("kind") == kind and row.get("shard") == shard]
    return max(versions, default=0) + 1


def retire_adapter(db: TinyDB, adapter_id: str) -> None:
    """Withdraw an adapter from serving; `collect_garbage` then deletes its files."""
    db.table("adapters").update(
        {"status": RETIRED, "path": None, "valid_errors": None, "retired": now_iso()},
        lambda row: row["id"] == adapter_id,
    )


def withdraw_adapter(db: TinyDB, adapter_id: str, request_id: str) -> None:
    """Take an adapter trained on purged data out of serving (its files go with the next
    garbage collection); the retrain's swap marks it replaced."""
    db.table("adapters").update(
        {"status": WITHDRAWN, "path": None, "valid_errors": None, "withdrawn": now_iso(),
         "withdrawn_by": request_id},
        lambda row: row["id"] == adapter_id,
    )


def update_adapter(db: TinyDB, adapter_id: str, fields: dict[str, Any]) -> None:
    db.table("adapters").update(fields, lambda row: row["id"] == adapter_id)


def commit_adapters(db: TinyDB, new_rows: list[dict[str, Any]]) -> None:
    """Make `new_rows` live, marking what each replaces (live or withdrawn) as replaced
    (files collected later)."""
    adapters = db.table("adapters")
    for new in new_rows:
        for old in adapters.all():
            if (old.get("status") in (LIVE, WITHDRAWN) and old.get("kind") == new["kind"]
                    and old.get("shard") == new["shard"]):
                adapters.update(
                    {"status": REPLACED, "path": None, "valid_errors": None,
                     "replaced_by": new["id"], "replaced": now_iso()},
                    doc_ids=[old.doc_id],
                )
        adapters.insert(new)
        if new["kind"] == SHARD:
            update_shard(db, new["shard"], {"adapter": new["id"]})


# -- forget requests -------------------------------------------------------------------------


def request_rows(db: TinyDB) -> list[dict[str, Any]]:
    return sorted(db.table("requests").all(), key=lambda row: row["id"])


def open_requests(db: TinyDB) -> list[dict[str, Any]]:
    return [row for row in request_rows(db) if row.get("status") in OPEN_REQUEST_STATES]


def find_request(db: TinyDB, request_id: str) -> dict[str, Any] | None:
    rows = db.table("requests").search(lambda row: row["id"] == request_id)
    return rows[0] if rows else None


def next_request_id(db: TinyDB) -> str:
    numbers = [int(row["id"][1:]) for row in db.table("requests") if row["id"][1:].isdigit()]
    return f"r{max(numbers, default=0) + 1:04d}"


def insert_request(db: TinyDB, request: dict[str, Any]) -> None:
    db.table("requests").insert(request)


def update_request(db: TinyDB, request_id: str, fields: dict[str, Any]) -> None:
    db.table("requests").update(fields, lambda row: row["id"] == request_id)


def done_subjects(db: TinyDB) -> dict[str, dict[str, Any]]:
    """subject fingerprint → the finished request that removed it."""
    found: dict[str, dict[str, Any]] = {}
    for row in db.table("requests"):
        if row.get("status") == DONE:
            for fingerprint in row.get("subjects", []):
                found.setdefault(fingerprint, row)
    return found


# -- the audit log ---------------------------------------------------------------------------


def audit_entries(db: TinyDB) -> list[dict[str, Any]]:
    """In sequence order; an entry whose seq was tampered into a non-number sorts last (and
    fails verification) instead of crashing the reader."""
    def order(entry: dict[str, Any]) -> tuple[int, int]:
        seq = entry.get("seq")
        return (0, seq) if isinstance(seq, int) else (1, 0)

    return sorted(db.table("audit").all(), key=order)


def insert_audit_entry(db: TinyDB, entry: dict[str, Any]) -> None:
    db.table("audit").insert(entry)


# -- the served recommender's score history ---------------------------------------------------

# Enough points for years of forgets; the cap keeps apa.json (rewritten on every commit) small.
SCORE_HISTORY_LIMIT = 500


def score_history(db: TinyDB) -> list[dict[str, Any]]:
    """Every recorded whole-split score of the served recommender, oldest first."""
    meta = db.table("meta").get(doc_id=1) or {}
    return list(meta.get("score_history") or [])


def append_score_point(db: TinyDB, point: dict[str, Any]) -> None:
    history = score_history(db) + [point]
    db.table("meta").update({"score_history": history[-SCORE_HISTORY_LIMIT:]}, doc_ids=[1])


def last_done_request(db: TinyDB) -> dict[str, Any] | None:
    """The forget request that finished last (the one a score now runs after)."""
    done = [row for row in request_rows(db) if row.get("status") == DONE]
    return max(done, key=lambda row: (row.get("finished") or "", row["id"]), default=None)
