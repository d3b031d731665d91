"""The store's record of the model it was built with: adapters, error tables and embeddings
only mean something for the model that produced them, so another model is refused."""

from __future__ import annotations

from typing import Any

from apa_console.errors import ConflictError
from apa_console.store import audit
from apa_console.store.document import Store, get_meta, update_meta


def record_model(store: Store, info: dict[str, Any]) -> dict[str, Any]:
    """Record `info` as the store's model, or check it matches the one already recorded.

    Returns the recorded info. A different model raises a one-line ConflictError.
    """
    check_model(store, info)
    with store.transaction() as db:
        recorded = get_meta(db).get("model")
        if recorded:
            _refuse_mismatch(store, recorded, info)
            return recorded
        update_meta(db, model=dict(info))
        audit.append(db, "model.recorded", {"name": info.get("name"),
                                            "fingerprint": info.get("fingerprint")})
    return dict(info)


def check_model(store: Store, info: dict[str, Any]) -> None:
    """Refuse (ConflictError) when the store was built with another model; no write."""
    recorded = get_meta(store.snapshot()).get("model")
    if recorded:
        _refuse_mismatch(store, recorded, info)


def _refuse_mismatch(store: Store, recorded: dict, info: dict) -> None:
    if recorded.get("fingerprint") != info.get("fingerprint"):
        raise ConflictError(
            f"store {store.root} was built with model {recorded.get('name')!r} "
            f"({recorded.get('source')}), not {info.get('name')!r} ({info.get('source')}); "
            "use the same --model, or another --store"
        )
