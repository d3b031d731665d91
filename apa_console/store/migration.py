"""Bringing a store an older apa-console wrote to the current layout, logged like any write."""

from __future__ import annotations

from apa_console.store import audit
from apa_console.store.document import SCHEMA_VERSION, Store


def migrate(store: Store) -> bool:
    """Move a schema-1 store's samples and id lists into segments in one atomic commit, with
    its audit entry (what its next write would do anyway); False, and nothing written, when
    the store already has the current layout."""
    with store.locked():
        if not store.needs_migration():
            return False
        with store.transaction() as db:
            audit.append(db, "store.migrated", {"schema_version": SCHEMA_VERSION})
    return True
