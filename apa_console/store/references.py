"""Which files beside apa.json a document references: what garbage collection keeps, and
whether every reference still leads to a file (collection waits when one does not)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from apa_console.errors import StoreInvalidError
from apa_console.safe_text import quoted
from apa_console.store import embedding_parts, id_lists, sample_segments
from apa_console.store.arrays import ARRAYS_DIR
from apa_console.store.segments import SEGMENTS_DIR

# Folders whose files are referenced from apa.json and garbage-collected when they are not.
MANAGED_DIRS = (ARRAYS_DIR, "adapters", SEGMENTS_DIR)


def checked_path(root: Path, document_file: Path, relative: str) -> Path:
    """The file or folder a store-relative path names.

    Paths come from apa.json, so they are untrusted: one that is not a plain relative
    path inside the store (absolute, `..`, empty, a NUL byte), or that passes through a
    symlink, or a folder holding one, means the store was tampered with (exit 5)."""
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise StoreInvalidError(f"{document_file} is corrupt: bad file path {quoted(relative)}")
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or "\\" in relative or ".." in parts:
        raise StoreInvalidError(
            f"{document_file} is corrupt: path {quoted(relative)} leads outside the store")
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise StoreInvalidError(
                f"{path} is a symlink; a store holds only its own files (remove the link)")
    if path.is_dir():
        for child in path.iterdir():
            if child.is_symlink():
                raise StoreInvalidError(
                    f"{child} is a symlink; a store holds only its own files (remove the link)")
    return path


def referenced_paths(document: Any) -> set[str]:
    """Every store-relative managed path mentioned anywhere in the document."""
    found: set[str] = set()
    stack = [document]
    prefixes = tuple(f"{managed}/" for managed in MANAGED_DIRS)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.startswith(prefixes):
            found.add(item.rstrip("/"))
    return found


def intact(path_of, document: dict) -> bool:
    """Every file field names an existing file under a managed folder."""
    embeddings = ((document.get("meta", {}).get("1", {}).get("embeddings") or {})
                  .values())
    fields = ([ref for entry in embeddings for ref in embedding_parts.files(entry)]
              + [row.get("centre") for row in document.get("shards", {}).values()]
              + sample_segments.segment_files(sample_segments.entry_of(document))
              + id_lists.files(document)
              + [row.get(key) for row in document.get("adapters", {}).values()
                 for key in ("path", "valid_errors")])
    prefixes = tuple(f"{managed}/" for managed in MANAGED_DIRS)
    refs = [ref for ref in fields if ref is not None]
    if not all(isinstance(ref, str) and ref.startswith(prefixes) for ref in refs):
        return False
    try:
        return all(path_of(ref).exists() for ref in referenced_paths(document))
    except StoreInvalidError:
        return False


def unreferenced(root: Path, document: dict) -> list[Path]:
    """Files in the managed folders that `document` does not reference (a file counts as
    referenced when it or a folder above it is)."""
    referenced = referenced_paths(document)
    found = []
    for managed in MANAGED_DIRS:
        for path in sorted((root / managed).rglob("*")):
            if not path.is_file() or path.is_symlink():  # a link is not the store's to delete
                continue
            relative = PurePosixPath(path.relative_to(root).as_posix())
            names = {relative.as_posix()} | {parent.as_posix() for parent in relative.parents}
            if not names & referenced:
                found.append(path)
    return found
