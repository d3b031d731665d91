"""Exporting the store's samples, one way for the CLI and the TUI."""

from __future__ import annotations

from pathlib import Path

from apa_console.data.tallrec import export_tallrec
from apa_console.errors import ConflictError
from apa_console.store import catalog
from apa_console.store.document import Store


def export_samples(store: Store, directory: Path, *, overwrite: bool = False,
                   with_user_id: bool = False) -> dict[str, tuple[Path, int]]:
    """Write train/valid/test JSON in TALLRec's format; per split, the file and its count.
    Refuses an empty store and, without `overwrite`, existing files (nothing written)."""
    grouped = catalog.samples_by_split(store)
    if not any(grouped.values()):
        raise ConflictError("the store holds no samples; run `apa-console ingest` first")
    written = export_tallrec(grouped, Path(directory), overwrite=overwrite,
                             with_user_id=with_user_id)
    return {split: (path, len(grouped.get(split, []))) for split, path in written.items()}
