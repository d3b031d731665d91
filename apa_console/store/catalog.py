"""Reading users and samples: the functions both front-ends call instead of TinyDB.

Every function takes a `Store` (and reads one fresh snapshot) or an already-open snapshot,
so a screen that shows several things can read them from one consistent view. Counts come
from the users table, which every write that adds or removes samples recounts in the same
commit; a user's rows come from their own segment, so nothing here reads every sample
except `samples_by_split` and `median_user`.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from tinydb import TinyDB

from apa_console.errors import NotFoundError, StoreInvalidError
from apa_console.safe_text import clipped, quoted
from apa_console.samples import SPLITS, Sample
from apa_console.store import audit, records
from apa_console.store.document import Store

StoreOrView = Store | TinyDB


def _view(source: StoreOrView) -> TinyDB:
    return source.snapshot() if isinstance(source, Store) else source


def natural_key(identifier: str) -> tuple:
    """Numeric ids in numeric order ("2" before "10"), then the rest alphabetically."""
    return (0, int(identifier), "") if identifier.isdigit() else (1, 0, identifier)


def _summary(user_id: str, per_split: Counter) -> dict[str, Any]:
    counts = {split: per_split.get(split, 0) for split in SPLITS}
    return {"id": user_id, "samples": sum(counts.values()), "counts": counts}


def list_users(
    source: StoreOrView,
    contains: str | None = None,
    min_samples: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Users as {id, samples, counts: {train, valid, test}}, most samples first.

    `contains` keeps ids containing it (case-insensitive); ties are in natural id order.
    """
    db = _view(source)
    needle = (contains or "").lower()
    users = [
        _summary(row["id"], Counter(row["counts"]))
        for row in db.table("users")
        if needle in row["id"].lower()
    ]
    users = [user for user in users if user["samples"] >= min_samples]
    shards_of_user: dict[str, set[int]] = {}
    for row in records.shard_summaries(db):
        for user_id in row["users"]:
            shards_of_user.setdefault(user_id, set()).add(row["shard"])
    for user in users:
        user["shards"] = sorted(shards_of_user.get(user["id"], ()))
    users.sort(key=lambda user: (-user["samples"], natural_key(user["id"])))
    return users if limit is None else users[: max(limit, 0)]


def forgotten_in(source: StoreOrView, kind: str, value: str) -> str | None:
    """The finished request that forgot a subject (kind: user, sample, item), matched by its
    keyed pseudonym; None when none did. The key is loaded only when a request finished."""
    db = _view(source)
    done = records.done_subjects(db)
    if not done:
        return None
    try:
        names = audit.pseudonyms(db)
    except StoreInvalidError:  # no key: the hint is lost, the error it decorates is not
        return None
    row = done.get(names.fingerprint(kind, value))
    return None if row is None else str(row["id"])


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def user_not_found(source: StoreOrView, user_id: str) -> NotFoundError:
    """The one error every command raises for an unknown user id, with the same hint: the
    request that forgot the user, else the nearest ids ("did you mean u003?")."""
    db = _view(source)
    request = forgotten_in(db, "user", user_id)
    if request is not None:
        return NotFoundError(
            f"no user {quoted(user_id)} in the store: {clipped(user_id)} was forgotten in "
            f"{request}")
    known = sorted(records.user_ids(db), key=natural_key)
    if not known:
        return NotFoundError(f"no user {quoted(user_id)}: the store holds no users")
    near = difflib.get_close_matches(user_id, known, n=3, cutoff=0.6)
    hint = (f"did you mean {_either(near)}?" if near
            else "`apa-console users --match TEXT` lists users")
    return NotFoundError(f"no user {quoted(user_id)} in the store; {hint}")


def user_samples(source: StoreOrView, user_id: str) -> list[dict[str, Any]]:
    """The user's sample records in source order."""
    return [dict(row) for row in records.user_sample_rows(_view(source), user_id)]


def user_detail(
    source: StoreOrView, user_id: str, limit: int | None = None
) -> dict[str, Any]:
    """{id, samples, counts, splits: {split: [sample records]}}; `limit` caps each split."""
    db = _view(source)
    if not records.has_user(db, user_id):
        raise user_not_found(db, user_id)
    own = user_samples(db, user_id)
    shard_of = records.user_sample_shards(db, user_id, [row["id"] for row in own])
    rows = [{**row, "shard": shard_of.get(row["id"])} for row in own]
    splits = {split: [row for row in rows if row["split"] == split] for split in SPLITS}
    detail = _summary(user_id, Counter({split: len(rows) for split, rows in splits.items()}))
    detail["shards"] = sorted({row["shard"] for row in rows if row["shard"] is not None})
    detail["splits"] = {
        split: rows if limit is None else rows[: max(limit, 0)] for split, rows in splits.items()
    }
    return detail


def samples_by_split(source: StoreOrView) -> dict[str, list[Sample]]:
    """Every stored sample, per split, in source order."""
    grouped: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for row in records.sample_rows(_view(source)):
        grouped.setdefault(row["split"], []).append(Sample.from_record(row))
    for samples in grouped.values():
        samples.sort(key=lambda sample: sample.order)
    return grouped


def median_user(source: StoreOrView, split: str = "train") -> str | None:
    """The user whose sample count in `split` is the (lower) median over users with any;
    among equals, the first in natural id order. None when the split is empty."""
    counts = Counter({row["id"]: row["counts"].get(split, 0)
                      for row in _view(source).table("users")})
    counts = +counts  # users with none in the split do not count
    if not counts:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], natural_key(kv[0])))
    return ranked[(len(ranked) - 1) // 2][0]
