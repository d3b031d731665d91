"""The on-disk store: one TinyDB file of metadata plus immutable files beside it.

Safety rules, which everything else relies on:
- `apa.json` is the single commit point. It is only ever replaced whole (temp file, fsync,
  `os.replace`), so a reader or a process killed at any moment sees the old or the new file.
- Files beside it (segments, arrays, adapters) are written once under fresh names before
  the commit that references them; files no longer referenced are deleted after it
  (`collect_garbage`).
  A crash therefore leaves at worst unreferenced files, never a reference to a missing one.
- One writer at a time across processes: an OS file lock, released by the kernel if the
  holder dies. Readers need no lock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from apa_console.errors import ConflictError, StoreInvalidError, StoreLockedError
from apa_console.fileio import atomic_write_bytes
from apa_console.store import arrays, id_lists, keys, references, sample_segments
from apa_console.store.references import MANAGED_DIRS
from apa_console.store.schema import RecordError, check_document

if TYPE_CHECKING:  # numpy is imported by the two methods that need it (fast CLI start)
    import numpy as np

APP_NAME = "apa-console"
# 2: samples live in Parquet segments (sample_segments.py). A schema-1 store (samples
# inside apa.json) is read as it is and migrated by its next commit.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
STORE_FILE = "apa.json"
LOCK_FILE = "apa.lock"
TABLES = ("meta", "users", "samples", "shards", "adapters", "requests", "audit")
MODELS_DIR = "models"
DEFAULT_STORE = "store"
STORE_ENV = "APA_STORE"


def resolve_store_path(path: str | os.PathLike | None) -> Path:
    """`--store` wins, then `$APA_STORE`, then `./store`."""
    chosen = path if path not in (None, "") else os.environ.get(STORE_ENV) or DEFAULT_STORE
    return Path(chosen).expanduser().absolute()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _DocumentStorage(Storage):
    """TinyDB storage over an in-memory document; the Store decides when it reaches disk."""

    def __init__(self, document: dict, read_only: bool = False):
        self.document = document
        self.read_only = read_only
        self.dirty = False

    def read(self) -> dict:
        return self.document

    def write(self, data: dict) -> None:
        if self.read_only:
            raise RuntimeError("this store view is read-only; open a transaction to write")
        self.document = data
        self.dirty = True


class _UncachedTable(Table):
    # Another process may commit between two of our views: never serve cached query results.
    default_query_cache_capacity = 0


class _StoreDB(TinyDB):
    table_class = _UncachedTable


def _open_db(document: dict, read_only: bool, store: Store) -> TinyDB:
    db = _StoreDB(storage=_DocumentStorage, document=document, read_only=read_only)
    db.store = store  # records reach the segment files of this document through it
    return db


def _empty_document() -> dict:
    """A new store's document; its key is written outside the store first (`keys`)."""
    document: dict[str, Any] = {name: {} for name in TABLES}
    document["meta"] = {
        "1": {
            "app": APP_NAME,
            "schema_version": SCHEMA_VERSION,
            "created": now_iso(),
            **keys.new_store_meta(),
        }
    }
    return document


class Store:
    """A store directory. Cheap to construct; every read sees the latest committed file."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.file = self.root / STORE_FILE
        self._file_lock = None

    @property
    def _lock(self):
        """The OS file lock, made on first use (filelock pulls in asyncio: slow to import,
        and read-only commands never need it)."""
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(str(self.root / LOCK_FILE))
        return self._file_lock

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike | None) -> Store:
        root = resolve_store_path(path)
        if (root / STORE_FILE).exists():
            raise ConflictError(f"{root} already holds a store; use it, or pick another --store")
        if root.exists() and not root.is_dir():
            raise StoreInvalidError(f"{root} exists and is not a directory; pick another --store")
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root)
        with store.locked():
            if store.file.exists():  # another process initialised it meanwhile
                raise ConflictError(f"{root} already holds a store; pick another --store")
            store._write_document(_empty_document())
        return store

    @classmethod
    def open(cls, path: str | os.PathLike | None) -> Store:
        root = resolve_store_path(path)
        if not (root / STORE_FILE).is_file():
            raise StoreInvalidError(
                f"no store at {root}: run `apa-console init --store {root}` first"
            )
        store = cls(root)
        store.tidy(store.load())  # load validates
        return store

    def load(self) -> dict:
        """Parse and validate apa.json; a one-line StoreInvalidError for anything wrong."""
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            raise StoreInvalidError(
                f"no store at {self.root}: run `apa-console init --store {self.root}` first"
            ) from None
        except OSError as exc:
            raise StoreInvalidError(f"cannot read {self.file}: {exc.strerror}") from None
        try:
            document = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreInvalidError(
                f"{self.file} is corrupt (not valid JSON); restore it from a backup "
                "or point --store at another store"
            ) from None
        meta = document.get("meta", {}).get("1") if isinstance(document, dict) else None
        if not isinstance(meta, dict) or meta.get("app") != APP_NAME:
            raise StoreInvalidError(
                f"{self.file} is not an apa-console store; point --store at one "
                "or run `apa-console init` in an empty directory"
            )
        if meta.get("schema_version") not in READABLE_SCHEMAS:
            raise StoreInvalidError(
                f"{self.file} has schema version {meta.get('schema_version')}, this apa-console "
                f"reads versions {', '.join(map(str, READABLE_SCHEMAS))}; use a matching "
                "apa-console release"
            )
        for name in TABLES:
            if not isinstance(document.get(name, {}), dict):
                raise StoreInvalidError(f"{self.file} is corrupt (table {name!r} is malformed)")
            document.setdefault(name, {})
        try:  # every record has the shape its readers assume (schema.py says why here)
            check_document(document)
        except RecordError as exc:
            raise StoreInvalidError(
                f"{self.file} is corrupt ({exc}); restore it from a backup"
            ) from None
        return document

    # -- reading and writing -------------------------------------------------------------

    def snapshot(self) -> TinyDB:
        """A read-only TinyDB view of the committed state."""
        return _open_db(self.load(), read_only=True, store=self)

    @contextmanager
    def locked(self, wait_s: float = 2.0) -> Iterator[None]:
        """Hold the single-writer lock (re-entrant within one thread)."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=wait_s)
        except Timeout:
            raise StoreLockedError(
                f"store {self.root} is locked by another apa-console process; "
                "wait for it to finish (or stop it) and retry"
            ) from None
        try:
            if self._lock.lock_counter == 1:
                self.remove_temp_files()
            yield
        finally:
            self._lock.release()

    def remove_temp_files(self) -> list[str]:
        """Delete the temp files of writes a killed writer never finished (the lock holder is
        the only writer, so any temp file it finds is dead): they can hold a whole earlier
        apa.json, forgotten data included."""
        removed = []
        for path in self._temp_files():
            path.unlink()
            removed.append(path.relative_to(self.root).as_posix())
        return removed

    def _temp_files(self) -> list[Path]:
        found = list(self.root.glob(".*.tmp"))
        for managed in MANAGED_DIRS:
            found += (self.root / managed).rglob(".*.tmp")
        return sorted(p for p in found if p.is_file() and not p.is_symlink())

    def tidy(self, document: dict | None = None) -> None:
        """Collect what an interrupted writer left (temp files, unreferenced files), when
        there is any and no writer runs now; a reader never waits for it."""
        document = self.load() if document is None else document
        # With a damaged reference, what looks unreferenced may be the file it meant: keep
        # everything for the operator's repair (the command will refuse the damage itself).
        collect = self._references_intact(document) and bool(self._unreferenced(document))
        if not self._temp_files() and not collect:
            return  # the common case costs a directory listing, not the lock's import
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except (Timeout, OSError):  # a writer runs, or the store is read-only to us
            return
        try:
            if self._lock.lock_counter == 1:
                self.remove_temp_files()
            if collect:
                self.collect_garbage()
        finally:
            self._lock.release()

    def _references_intact(self, document: dict) -> bool:
        return references.intact(self.path_of, document)

    def _unreferenced(self, document: dict) -> list[Path]:
        return references.unreferenced(self.root, document)

    @contextmanager
    def transaction(self, wait_s: float = 2.0) -> Iterator[TinyDB]:
        """Read the latest state, let the caller change it, commit it in one atomic write.

        An exception inside the block discards every change.
        """
        with self.locked(wait_s):
            db = _open_db(self.load(), read_only=False, store=self)
            yield db
            storage: _DocumentStorage = db.storage  # type: ignore[assignment]
            if storage.dirty:
                self._write_document(storage.document)

    def _write_document(self, document: dict) -> None:
        """Commit `document`; sample rows and id lists still inside it move to segments
        first, so every commit of a schema-1 store is also its migration (one atomic
        replace)."""
        sample_segments.absorb_inline(self.path_of, document)
        id_lists.absorb_inline(self.path_of, document)
        document["meta"]["1"]["schema_version"] = SCHEMA_VERSION
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.file, data)

    def needs_migration(self) -> bool:
        """True for a store an older apa-console wrote (store/migration.py moves it on)."""
        document = self.load()
        return (document["meta"]["1"].get("schema_version") != SCHEMA_VERSION
                or bool(document.get("samples")))

    def change_token(self) -> tuple[int, int]:
        """Changes whenever a writer commits; lets a viewer (the TUI) know to refresh."""
        try:
            stat = self.file.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    # -- files beside apa.json -----------------------------------------------------------

    def path_of(self, relative: str) -> Path:
        """The file or folder a store-relative path names.

        Paths come from apa.json, so they are untrusted: one that is not a plain relative
        path inside the store (absolute, `..`, empty, a NUL byte), or that passes through a
        symlink, or a folder holding one, means the store was tampered with (exit 5)."""
        if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
            raise StoreInvalidError(f"{self.file} is corrupt: bad file path {relative!r}")
        parts = PurePosixPath(relative).parts
        if PurePosixPath(relative).is_absolute() or "\\" in relative or ".." in parts:
            raise StoreInvalidError(
                f"{self.file} is corrupt: path {relative!r} leads outside the store"
            )
        path = self.root
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise StoreInvalidError(
                    f"{path} is a symlink; a store holds only its own files (remove the link)"
                )
        if path.is_dir():
            for child in path.iterdir():
                if child.is_symlink():
                    raise StoreInvalidError(
                        f"{child} is a symlink; a store holds only its own files "
                        "(remove the link)"
                    )
        return path

    def write_array(self, kind: str, array: np.ndarray) -> str:
        """Save an array under a content-addressed name; returns the store-relative path."""
        return arrays.write_array(self.path_of, kind, array)

    def read_array(self, relative: str, ndim: int | None = None,
                   rows: int | None = None) -> np.ndarray:
        """A numeric array the store references (exit 5 when missing or not as recorded)."""
        return arrays.read_array(self.path_of, relative, ndim, rows)

    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    def collect_garbage(self) -> list[str]:
        """Delete managed files that the committed apa.json no longer references.

        Safe to run at any time by the lock holder; it is how a crash's leftovers and the
        files of forgotten data disappear.
        """
        removed: list[str] = []
        for path in self._unreferenced(self.load()):
            path.unlink()
            removed.append(path.relative_to(self.root).as_posix())
        for managed in MANAGED_DIRS:
            for directory in sorted((self.root / managed).rglob("*"), reverse=True):
                if directory.is_dir() and not any(directory.iterdir()):
                    directory.rmdir()
        return removed

def get_meta(db: TinyDB) -> dict:
    return dict(db.table("meta").get(doc_id=1) or {})


def update_meta(db: TinyDB, **fields: Any) -> None:
    db.table("meta").update(fields, doc_ids=[1])
