"""The append-only audit chain, written in the same transaction as each state change.

Each entry is {seq, time, event, data, prev, hash} with hash = HMAC-SHA256(key, prev ‖
canonical JSON of seq, time, event, data), the key being the store's own, kept outside the
store (`keys`). Editing, removing or reordering an entry breaks its hash and every later
link, and without the key nobody can recompute them; a truncated tail is caught by
comparing against a head recorded elsewhere (`audit verify --expect-head`). Entries hold
no personal data: subjects appear only as keyed pseudonyms, the rest is counts and ids of
shards, adapters and requests.

It lives in store/ (not unlearning/) because ingest, partition and train log their changes
too, and those layers sit below unlearning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tinydb import TinyDB

from apa_console.store import keys, records
from apa_console.store.document import Store, get_meta, now_iso

GENESIS = "0" * 64
MIN_HEAD_PREFIX = 16


def pseudonyms(db: TinyDB) -> keys.Pseudonyms:
    """The store's pseudonym scheme (loads its key; StoreInvalidError when it is missing)."""
    return keys.pseudonyms(get_meta(db))


def key_file(store: Store) -> Path | None:
    """Where `store`'s key is looked for (None for a legacy store, which has none)."""
    meta = get_meta(store.snapshot())
    return keys.key_path(meta["store_id"]) if keys.is_keyed(meta) else None


def _body(seq: Any, time: Any, event: Any, data: Any) -> str:
    return json.dumps({"seq": seq, "time": time, "event": event, "data": data},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def append(db: TinyDB, event: str, data: dict[str, Any]) -> dict[str, Any]:
    """Append one entry inside the caller's transaction (so it commits with the change)."""
    sealer = pseudonyms(db)
    log = records.audit_entries(db)
    prev = log[-1]["hash"] if log else GENESIS
    seq = log[-1]["seq"] + 1 if log else 1
    time = now_iso()
    entry = {"seq": seq, "time": time, "event": event, "data": data, "prev": prev,
             "hash": sealer.seal(prev, _body(seq, time, event, data))}
    records.insert_audit_entry(db, entry)
    return entry


def head(db: TinyDB) -> str:
    log = records.audit_entries(db)
    return log[-1]["hash"] if log else GENESIS


def verify_chain(log: Iterable[dict[str, Any]], sealer: keys.Pseudonyms) -> list[str]:
    """Problems found in the chain (empty when intact)."""
    problems = []
    prev = GENESIS
    for expected_seq, entry in enumerate(log, start=1):
        if entry.get("seq") != expected_seq:
            problems.append(f"entry {expected_seq}: sequence number {entry.get('seq')}")
        if entry.get("prev") != prev:
            problems.append(f"entry {entry.get('seq')}: does not link to the previous entry")
        body = _body(entry.get("seq"), entry.get("time"), entry.get("event"), entry.get("data"))
        if sealer.seal(str(entry.get("prev", "")), body) != entry.get("hash"):
            problems.append(f"entry {entry.get('seq')}: content does not match its "
                            + ("keyed hash" if sealer.keyed else "hash"))
        prev = entry.get("hash", "")
    return problems


def find_anchor(log: list[dict[str, Any]], anchored: str) -> int | None:
    """Index of the entry whose hash is `anchored` (the full hash, or a prefix of at least
    MIN_HEAD_PREFIX hex digits that names one entry); None when absent."""
    wanted = anchored.strip().lower()
    if wanted == GENESIS:
        return -1
    if len(wanted) < MIN_HEAD_PREFIX:
        return None
    hits = [i for i, entry in enumerate(log) if str(entry.get("hash", "")).startswith(wanted)]
    return hits[0] if len(hits) == 1 else None
