"""The append-only, hash-chained audit log, and the salted fingerprints it uses instead of
personal data.

Each entry is {seq, time, event, data, prev, hash} with hash = sha256(prev ‖ canonical JSON
of seq, time, event, data). Changing, removing or reordering any entry breaks every later
hash. Subjects (user ids, sample ids, texts) only ever appear as salted sha256 fingerprints,
so the log keeps no personal data after a forget; the salt is the store's own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from tinydb import TinyDB

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.fileio import sha256_file
from apa_console.store import records
from apa_console.store.document import Store, get_meta, now_iso

GENESIS = "0" * 64


def fingerprint(salt: str, kind: str, value: str) -> str:
    """Salted sha256 of one subject (kind: "user", "sample", "item", "text", "vector")."""
    return hashlib.sha256(f"{salt}\x00{kind}\x00{value}".encode()).hexdigest()


def store_salt(db: TinyDB) -> str:
    return get_meta(db)["salt"]


def _entry_hash(prev: str, seq: int, time: str, event: str, data: Any) -> str:
    body = json.dumps({"seq": seq, "time": time, "event": event, "data": data},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + body).encode()).hexdigest()


def append(db: TinyDB, event: str, data: dict[str, Any]) -> dict[str, Any]:
    """Append one entry inside the caller's transaction (so it commits with the change)."""
    entries = records.audit_entries(db)
    prev = entries[-1]["hash"] if entries else GENESIS
    seq = entries[-1]["seq"] + 1 if entries else 1
    time = now_iso()
    entry = {"seq": seq, "time": time, "event": event, "data": data, "prev": prev,
             "hash": _entry_hash(prev, seq, time, event, data)}
    records.insert_audit_entry(db, entry)
    return entry


def entries(store: Store) -> list[dict[str, Any]]:
    return records.audit_entries(store.snapshot())


def verify_chain(log: Iterable[dict[str, Any]]) -> list[str]:
    """Problems found in the chain (empty when intact)."""
    problems = []
    prev = GENESIS
    for expected_seq, entry in enumerate(log, start=1):
        if entry.get("seq") != expected_seq:
            problems.append(f"entry {expected_seq}: sequence number {entry.get('seq')}")
        if entry.get("prev") != prev:
            problems.append(f"entry {entry.get('seq')}: does not link to the previous entry")
        recomputed = _entry_hash(entry.get("prev", ""), entry.get("seq"), entry.get("time"),
                                 entry.get("event"), entry.get("data"))
        if recomputed != entry.get("hash"):
            problems.append(f"entry {entry.get('seq')}: content does not match its hash")
        prev = entry.get("hash", "")
    return problems


def verify_store(store: Store) -> dict[str, Any]:
    """`audit verify`: the chain is intact and every live adapter's weights match their
    recorded sha256."""
    log = entries(store)
    problems = verify_chain(log)
    adapters = []
    for row in records.all_live_adapters(store.snapshot()):
        weights = store.path_of(row["path"]) / ADAPTER_WEIGHTS
        actual = sha256_file(weights) if weights.is_file() else None
        ok = actual == row["sha256"]
        adapters.append({"adapter": row["id"], "sha256": row["sha256"], "ok": ok})
        if not ok:
            problems.append(
                f"adapter {row['id']}: weights {'missing' if actual is None else 'changed'}"
                f" ({weights})"
            )
    return {"entries": len(log), "head": log[-1]["hash"] if log else GENESIS,
            "adapters": adapters, "problems": problems, "ok": not problems}
