"""`audit --user U`: where U's data is now, and which finished requests removed it."""

from __future__ import annotations

from typing import Any

from apa_console.store import catalog, records
from apa_console.store.document import Store
from apa_console.unlearning import audit_log
from apa_console.unlearning.requests import request_state


def user_audit(store: Store, user: str) -> dict[str, Any]:
    db = store.snapshot()
    requests = records.request_rows(db)
    # the key is needed only to match the user against requests' pseudonyms
    fingerprint = audit_log.pseudonyms(db).fingerprint("user", user) if requests else None
    own = records.user_sample_rows(db, user)
    shard_of = records.user_sample_shards(db, user, [row["id"] for row in own])
    held: dict[str, int] = {}
    for row in own:
        key = f"shard {shard_of[row['id']]}" if row["id"] in shard_of else row["split"]
        held[key] = held.get(key, 0) + 1
    withdrawn = records.withdrawn_adapters(db)
    history = [
        {"request": row["id"], "status": row["status"], "phase": row.get("phase"),
         "created": row.get("created"), "finished": row.get("finished"),
         "shards": row.get("affected_shards", []), "removed": row.get("removed"),
         "state": request_state(row, withdrawn)}
        for row in requests if fingerprint in row.get("subjects", [])
    ]
    if not held and not history:
        raise catalog.user_not_found(db, user)
    return {"user_fingerprint": fingerprint, "holds": held, "present": bool(held),
            "requests": history}

