"""The store's secret key, kept outside the store directory, and the pseudonyms made with it.

Threat model. Someone who obtains a copy of the store directory (a backup, a shared disk, a
support bundle) must not be able to tell whether a forgotten user or sample id was ever in
it, nor rewrite the audit log so that it still verifies. So every pseudonym of a subject
(user, sample, item, text, vector) is HMAC-SHA256 under a 32-byte key, and every audit entry
is sealed with the same key; the key lives in `$APA_KEY_DIR` (default
`${XDG_CONFIG_HOME:-~/.config}/apa-console/keys/`), in a file named by the store's random
id, never inside the store. Without the key nothing in the store can be brute-forced back
to an id (the candidate ids are few; the key is not), and no entry can be forged.
Someone who holds both the store and the key is the operator, as far as this is concerned.
Losing the key loses the ability to match old pseudonyms (recognise an already-forgotten
id) and to verify the chain; back it up apart from the store.

Stores created before keyed pseudonyms (meta with a `salt` and no `pseudonyms`) keep their
salted sha256 scheme, with an unauthenticated chain, and say so in `audit verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from apa_console.errors import StoreInvalidError
from apa_console.fileio import atomic_write_bytes

KEY_DIR_ENV = "APA_KEY_DIR"
KEYED = "hmac-sha256"  # meta["pseudonyms"] of stores with a key outside them
LEGACY = "salted-sha256"  # stores from before: salt in meta, plain sha256 chain
KEY_BYTES = 32
_KEY_ID_LABEL = b"apa-console key id"


def key_dir() -> Path:
    """`$APA_KEY_DIR`, else `${XDG_CONFIG_HOME:-~/.config}/apa-console/keys`."""
    chosen = os.environ.get(KEY_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config).expanduser().absolute() / "apa-console" / "keys"


def key_path(store_id: str) -> Path:
    return key_dir() / f"{store_id}.key"


def key_id(key: bytes) -> str:
    """A public name of the key (HMAC of a fixed label): detects a wrong key, reveals none."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def new_store_id() -> str:
    return secrets.token_hex(16)


def create_key(store_id: str) -> tuple[Path, str]:
    """Write a fresh key for `store_id` (mode 0600, atomically); returns its path and id."""
    path = key_path(store_id)
    key = os.urandom(KEY_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():  # a random 128-bit id: only a copied key dir could collide
            raise StoreInvalidError(f"{path} already exists; refusing to overwrite a key")
        # the temp file mkstemp makes is 0600 from the start, so the key is never readable
        atomic_write_bytes(path, key.hex().encode("ascii") + b"\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StoreInvalidError(
            f"cannot write the store key to {path.parent}: {exc.strerror}; "
            f"set ${KEY_DIR_ENV} to a writable directory outside the store"
        ) from None
    return path, key_id(key)


def load_key(store_id: str, expected_id: str | None) -> bytes:
    """The key of `store_id`; a one-line StoreInvalidError when missing or wrong."""
    path = key_path(store_id)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise StoreInvalidError(
            f"the store's key is missing: looked for {path} (set ${KEY_DIR_ENV} to the "
            "directory that holds it, or restore it from your backup)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a key file"
        raise StoreInvalidError(f"cannot read the store's key {path}: {reason}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise StoreInvalidError(f"{path} is not an apa-console key (expected 64 hex digits)")
    if expected_id is not None and key_id(key) != expected_id:
        raise StoreInvalidError(
            f"{path} is not this store's key (key id {key_id(key)}, the store expects "
            f"{expected_id}); point ${KEY_DIR_ENV} at the right directory"
        )
    return key


@dataclass(frozen=True)
class Pseudonyms:
    """How one store names subjects and seals audit entries.

    Keyed stores: HMAC-SHA256 under the key outside the store. Legacy stores: sha256 with
    the salt kept in the store (linkable by anyone with the store; kept so they still open).
    """

    scheme: str
    secret: bytes = field(repr=False)

    @property
    def keyed(self) -> bool:
        return self.scheme == KEYED

    def fingerprint(self, kind: str, value: str) -> str:
        """The pseudonym of one subject (kind: user, sample, item, text, vector)."""
        if self.keyed:
            message = kind.encode() + b"\x00" + value.encode()
            return hmac.new(self.secret, message, hashlib.sha256).hexdigest()
        return legacy_fingerprint(self.secret.decode(), kind, value)

    def seal(self, prev: str, body: str) -> str:
        """The hash that chains an audit entry to the one before it."""
        message = (prev + body).encode()
        if self.keyed:
            return hmac.new(self.secret, message, hashlib.sha256).hexdigest()
        return hashlib.sha256(message).hexdigest()


def legacy_fingerprint(salt: str, kind: str, value: str) -> str:
    """The salted sha256 of stores created before keyed pseudonyms."""
    return hashlib.sha256(f"{salt}\x00{kind}\x00{value}".encode()).hexdigest()


def new_store_meta() -> dict[str, str]:
    """Meta fields of a new store, with its key written outside it."""
    store_id = new_store_id()
    _, kid = create_key(store_id)
    return {"store_id": store_id, "key_id": kid, "pseudonyms": KEYED}


def is_keyed(meta: dict) -> bool:
    return meta.get("pseudonyms") == KEYED


def pseudonyms(meta: dict) -> Pseudonyms:
    """The store's scheme; loads the key for keyed stores (StoreInvalidError if absent)."""
    if is_keyed(meta):
        store_id = meta.get("store_id")
        if not isinstance(store_id, str) or not store_id.isalnum():
            raise StoreInvalidError("the store's meta has no valid store_id; it is corrupt")
        return Pseudonyms(KEYED, load_key(store_id, meta.get("key_id")))
    if meta.get("pseudonyms") not in (None, LEGACY):
        raise StoreInvalidError(
            f"unknown pseudonym scheme {meta.get('pseudonyms')!r}; "
            "use a matching apa-console release")
    salt = meta.get("salt")
    if not isinstance(salt, str):
        raise StoreInvalidError("the store's meta has neither a key id nor a salt; it is corrupt")
    return Pseudonyms(LEGACY, salt.encode())
