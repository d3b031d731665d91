"""Exporting the store's samples, one way for the CLI and the TUI."""

from __future__ import annotations

from pathlib import Path

from apa_console.data.tallrec import SPLIT_FILES, export_tallrec
from apa_console.errors import ConflictError, UsageError
from apa_console.fileio import refusing_os_errors
from apa_console.store import catalog
from apa_console.store.document import Store


def export_samples(store: Store, directory: Path, *, overwrite: bool = False,
                   with_user_id: bool = False) -> dict[str, tuple[Path, int]]:
    """Write train/valid/test JSON in TALLRec's format; per split, the file and its count.
    Refuses an empty store and, without `overwrite`, existing files (nothing written). A
    destination the filesystem refuses (a file where the folder belongs, no permission, a
    full or read-only disk) is a usage error, and the files this export began are removed."""
    grouped = catalog.samples_by_split(store)
    if not any(grouped.values()):
        raise ConflictError("the store holds no samples; run `apa-console ingest` first")
    directory = Path(directory)
    new_files: list[Path] = []
    try:
        with refusing_os_errors("export to", UsageError, "choose another directory"):
            new_files = [directory / name for name in SPLIT_FILES.values()
                         if not (directory / name).exists()]
            written = export_tallrec(grouped, directory, overwrite=overwrite,
                                     with_user_id=with_user_id)
    except UsageError:
        for path in new_files:  # a half-done export would look like a whole one
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    return {split: (path, len(grouped.get(split, []))) for split, path in written.items()}
