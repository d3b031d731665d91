"""Collection: deleting what no commit references, by the holder of the store's lock.

Temp files of writes a killed writer never finished can hold a whole earlier apa.json,
forgotten data included; files a commit stopped referencing hold forgotten data too.
Neither is ever read again, so both are deleted. A symlink is not the store's: it is never
followed, emptied or removed here (reading one is refused, see `references.checked_path`).
"""

from __future__ import annotations

from pathlib import Path

from apa_console.store.references import MANAGED_DIRS, unreferenced


def temp_files(root: Path) -> list[Path]:
    found = list(root.glob(".*.tmp"))
    for managed in MANAGED_DIRS:
        found += (root / managed).rglob(".*.tmp")
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def remove_temp_files(root: Path) -> list[str]:
    """Delete the temp files of unfinished writes (the lock holder is the only writer, so
    any temp file it finds is dead); returns their store-relative paths."""
    removed = []
    for path in temp_files(root):
        path.unlink()
        removed.append(path.relative_to(root).as_posix())
    return removed


def remove_unreferenced(root: Path, document: dict) -> list[str]:
    """Delete managed files `document` does not reference, then the folders that leaves
    empty (a managed folder's own too); returns the files' store-relative paths."""
    removed: list[str] = []
    for path in unreferenced(root, document):
        path.unlink()
        removed.append(path.relative_to(root).as_posix())
    for managed in MANAGED_DIRS:
        folders = sorted((root / managed).rglob("*"), reverse=True)
        for directory in [*folders, root / managed]:
            if directory.is_dir() and not directory.is_symlink() \
                    and not any(directory.iterdir()):
                directory.rmdir()
    return removed
