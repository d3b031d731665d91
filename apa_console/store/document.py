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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from apa_console.errors import (
    ApaError,
    ConflictError,
    StoreInvalidError,
    StoreLockedError,
    UsageError,
)
from apa_console.fileio import (
    atomic_write_bytes,
    is_filesystem_refusal,
    os_refusal,
    refusing_os_errors,
)
from apa_console.safe_text import clipped
from apa_console.store import arrays, collection, id_lists, keys, references, sample_segments
from apa_console.store.schema import RecordError, check_document, check_meta_table

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
# What a refused write says after the OS's reason (a full disk, a read-only folder…)
WRITE_HINT = ("the store keeps its last commit; free space or grant write access, then run "
              "the command again")


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


def _check_schema_version(file: Path, meta: dict) -> None:
    if meta.get("schema_version") not in READABLE_SCHEMAS:
        raise StoreInvalidError(
            f"{file} has schema version {clipped(meta.get('schema_version'))}, this "
            f"apa-console reads versions {', '.join(map(str, READABLE_SCHEMAS))}; use a "
            "matching apa-console release"
        )


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
        made = [parent for parent in (root, *root.parents) if not parent.exists()]
        lock_was_there = (root / LOCK_FILE).exists()
        store = cls(root)
        document = None
        try:  # where the folder cannot be made or written, --store names a wrong place
            with refusing_os_errors("create a store at", UsageError, "pick another --store"):
                root.mkdir(parents=True, exist_ok=True)
            with store.locked(refusal=UsageError):
                if store.file.exists():  # another process initialised it meanwhile
                    raise ConflictError(f"{root} already holds a store; pick another --store")
                document = _empty_document()
                store._write_document(document)
        except (ConflictError, StoreLockedError):
            raise  # another process's store or init: nothing here is ours to undo
        except ApaError:
            store._undo_create(made, lock_was_there, document)
            raise
        return store

    def _undo_create(self, made: list[Path], lock_was_there: bool,
                     document: dict | None) -> None:
        """A refused `init` leaves nothing behind: not its key, lock file or folders."""
        if document is not None and not self.file.exists():
            keys.key_path(document["meta"]["1"]["store_id"]).unlink(missing_ok=True)
        leftovers = [] if lock_was_there else [self.root / LOCK_FILE]
        try:
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
            for folder in made:  # deepest first
                folder.rmdir()
        except OSError:  # the same refusal, most likely: what stays is empty
            pass

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
        try:  # every table, record and field has the shape its readers assume (schema.py)
            meta = check_meta_table(document)
            if meta is not None and meta.get("app") == APP_NAME:
                _check_schema_version(self.file, meta)
                check_document(document)
        except RecordError as exc:
            raise StoreInvalidError(
                f"{self.file} is corrupt ({exc}); restore it from a backup"
            ) from None
        if meta is None or meta.get("app") != APP_NAME:
            raise StoreInvalidError(
                f"{self.file} is not an apa-console store; point --store at one "
                "or run `apa-console init` in an empty directory"
            )
        for name in TABLES:
            document.setdefault(name, {})
        return document

    # -- reading and writing -------------------------------------------------------------

    def snapshot(self) -> TinyDB:
        """A read-only TinyDB view of the committed state."""
        return _open_db(self.load(), read_only=True, store=self)

    @contextmanager
    def locked(self, wait_s: float = 2.0,
               refusal: type[ApaError] = StoreInvalidError) -> Iterator[None]:
        """Hold the single-writer lock (re-entrant within one thread). The filesystem
        refusing a write under the store (permissions, a full or read-only disk, a file
        where a folder belongs) becomes a one-line `refusal`, after what the refused write
        left is collected: the store stays at its last commit."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=wait_s)
        except Timeout:
            raise StoreLockedError(
                f"store {self.root} is locked by another apa-console process; "
                "wait for it to finish (or stop it) and retry"
            ) from None
        except OSError as exc:
            if not is_filesystem_refusal(exc):
                raise
            raise os_refusal(exc, "lock the store for writing at", refusal,
                             "a command that changes the store needs write access to its "
                             "folder") from None
        try:
            with refusing_os_errors("write to the store at", refusal, WRITE_HINT,
                                    within=self.root):
                try:
                    if self._lock.lock_counter == 1:
                        self.remove_temp_files()
                    yield
                except Exception as exc:  # refused here, or in a nested hold (converted)
                    if self._lock.lock_counter == 1 and (
                            is_filesystem_refusal(exc) or is_filesystem_refusal(exc.__cause__)):
                        self._collect_quietly()
                    raise
        finally:
            self._lock.release()

    def _collect_quietly(self) -> None:
        """After a refused write: delete its temp and unreferenced files where the OS lets
        us (it may refuse this too; the next writer then collects them)."""
        try:
            document = self.load()
            self.remove_temp_files()
            if self._references_intact(document):
                self.collect_garbage()
        except (OSError, ApaError):
            pass

    def remove_temp_files(self) -> list[str]:
        """Delete what killed writers left half-written (`collection.py`)."""
        return collection.remove_temp_files(self.root)

    def _temp_files(self) -> list[Path]:
        return collection.temp_files(self.root)

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
        except OSError:  # a file we may not delete: a reader goes on, the next writer reports
            pass
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
        """The file or folder a store-relative path names (exit 5 for one that leaves the
        store or passes through a symlink: see `references.checked_path`)."""
        return references.checked_path(self.root, self.file, relative)

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
        """Delete managed files the committed apa.json no longer references (`collection.py`):
        how a crash's leftovers and the files of forgotten data disappear. Lock holder only."""
        return collection.remove_unreferenced(self.root, self.load())


def get_meta(db: TinyDB) -> dict:
    return dict(db.table("meta").get(doc_id=1) or {})


def update_meta(db: TinyDB, **fields: Any) -> None:
    db.table("meta").update(fields, doc_ids=[1])
