"""The proof side of the audit log: reading it, the keyed pseudonyms it uses instead of
personal data, and `audit verify`.

The chain itself (appending, sealing, checking links) is `store.audit`, so that every layer
that changes the store can log its change in the same commit; the key is `store.keys`.
`verify_store` checks the chain, an optional head anchored outside the store, and every
live adapter's weights against both the adapters table and the authenticated entry that
made the adapter live (a `train.adapter` entry or a forget receipt), so copying one
adapter's weights over another and editing the table to match is caught.
"""

from __future__ import annotations

import re
from typing import Any

from tinydb import TinyDB

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.errors import UsageError
from apa_console.fileio import sha256_file
from apa_console.safe_text import quoted
from apa_console.store import audit, keys, records
from apa_console.store.audit import GENESIS, append, head  # noqa: F401  (the log's API)
from apa_console.store.document import Store

LEGACY_NOTE = ("this store predates keyed pseudonyms: its chain is plain sha256 (anyone "
               "with the store can rewrite it) and its salted fingerprints can be "
               "brute-forced from the store alone")


def pseudonyms(db: TinyDB) -> keys.Pseudonyms:
    """The store's pseudonym scheme; StoreInvalidError (exit 5) when its key is missing."""
    return audit.pseudonyms(db)


def entries(store: Store) -> list[dict[str, Any]]:
    return records.audit_entries(store.snapshot())


def current_head(store: Store) -> str:
    return audit.head(store.snapshot())


def adapter_claims(log: list[dict[str, Any]]) -> dict[str, str]:
    """adapter id → the sha256 the log recorded when it went live."""
    claims: dict[str, str] = {}
    for entry in log:
        data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
        if entry.get("event") == "train.adapter" and data.get("sha256"):
            claims[str(data.get("adapter"))] = data["sha256"]
        receipt = data.get("receipt") if isinstance(data.get("receipt"), dict) else {}
        for change in receipt.get("adapters", []) if entry.get("event") == "forget.done" else []:
            after = change.get("after") if isinstance(change, dict) else None
            if isinstance(after, dict) and after.get("sha256"):
                claims[str(after.get("id"))] = after["sha256"]
    return claims


def check_head(anchored: str) -> None:
    """A head as receipts and `audit head` print it (16 to 64 hex digits); anything else is
    a typo (exit 2), not evidence of tampering."""
    if not re.fullmatch(rf"[0-9a-f]{{{audit.MIN_HEAD_PREFIX},64}}", anchored.strip().lower()):
        raise UsageError(f"--expect-head {quoted(anchored)} is not a head: give 16 to 64 hex "
                         "digits from a receipt or `apa-console audit head`")


def verify_store(store: Store, expect_head: str | None = None) -> dict[str, Any]:
    """`audit verify`: the chain is intact (and authentic, for keyed stores); `expect_head`,
    a head recorded earlier, is still in it; every live adapter's weights match the sha256
    in the adapters table and in the log entry that made it live."""
    if expect_head is not None:
        check_head(expect_head)
    db = store.snapshot()
    sealer = audit.pseudonyms(db)  # before anything else: no key, no verification
    log = records.audit_entries(db)
    problems = audit.verify_chain(log, sealer)
    notes = [] if sealer.keyed else [LEGACY_NOTE]
    anchor = None
    if expect_head is not None:
        index = audit.find_anchor(log, expect_head)
        if index is None:
            problems.append(f"anchored head {expect_head.strip()[:16]}… is not in the chain: "
                            "entries were removed or the log was rewritten")
        else:
            anchor = {"head": expect_head.strip(), "entries_after": len(log) - 1 - index}
    claims = adapter_claims(log)
    adapters = []
    for row in records.all_live_adapters(db):
        weights = store.path_of(row["path"]) / ADAPTER_WEIGHTS
        actual = sha256_file(weights) if weights.is_file() else None
        logged = claims.get(row["id"])
        ok = actual == row["sha256"]
        if not ok:
            problems.append(
                f"adapter {row['id']}: weights {'missing' if actual is None else 'changed'}"
                f" ({weights})"
            )
        if logged is None:
            if sealer.keyed:
                ok = False
                problems.append(f"adapter {row['id']}: no audit entry made it live")
            else:
                notes.append(f"adapter {row['id']}: trained before the log recorded adapters")
        elif logged != row["sha256"] or logged != actual:
            ok = False
            problems.append(f"adapter {row['id']}: weights do not match the sha256 its audit "
                            "entry recorded")
        adapters.append({"adapter": row["id"], "sha256": row["sha256"], "logged": logged,
                         "ok": ok})
    return {"entries": len(log), "head": log[-1]["hash"] if log else GENESIS,
            "scheme": sealer.scheme, "authenticated": sealer.keyed,
            "anchor": anchor, "adapters": adapters, "notes": notes,
            "problems": problems, "ok": not problems}
