"""What a forget request names (users, samples, items) and the samples that covers now."""

from __future__ import annotations

from dataclasses import dataclass, field

from tinydb import TinyDB

from apa_console.errors import NotFoundError, UsageError
from apa_console.safe_text import quoted
from apa_console.samples import Sample
from apa_console.store import catalog, records
from apa_console.store.keys import Pseudonyms
from apa_console.unlearning import audit_log


@dataclass
class Targets:
    users: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.users or self.samples or self.items)

    def to_dict(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "samples": list(self.samples),
                "items": list(self.items)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Targets:
        return cls(users=list(data.get("users", [])), samples=list(data.get("samples", [])),
                   items=list(data.get("items", [])))

    def fingerprints(self, names: Pseudonyms) -> list[str]:
        return ([names.fingerprint("user", u) for u in self.users]
                + [names.fingerprint("sample", s) for s in self.samples]
                + [names.fingerprint("item", i) for i in self.items])

    def label(self) -> str:
        parts = [f"user {u}" for u in self.users] + [f"sample {s}" for s in self.samples]
        return ", ".join(parts + [f"item {i}" for i in self.items])


def covered_samples(db: TinyDB, targets: Targets) -> tuple[list[Sample], list[str]]:
    """The samples the targets cover now, and the targets already forgotten earlier.

    Unknown targets raise NotFoundError; a target forgotten by a finished request is
    reported, not an error (forgetting is idempotent).
    """
    if targets.is_empty():
        raise UsageError("nothing to forget: give --user, --sample or --item")
    done = records.done_subjects(db)
    names: Pseudonyms | None = None  # the key is loaded only when a pseudonym is needed
    chosen: dict[str, dict] = {}
    already: list[str] = []

    def forgotten(kind: str, value: str) -> bool:
        nonlocal names
        if not done:
            return False
        names = names or audit_log.pseudonyms(db)
        if names.fingerprint(kind, value) in done:
            already.append(f"{kind} {value}")
            return True
        return False

    for user in targets.users:  # one user's segment each: a user forget reads no other rows
        matches = records.user_sample_rows(db, user)
        if not matches and not forgotten("user", user):
            raise catalog.user_not_found(db, user)
        chosen.update((r["id"], r) for r in matches)
    # a sample id or an item can be anywhere: these read every segment
    rows = records.sample_rows(db) if targets.samples or targets.items else []
    by_id = {r["id"]: r for r in rows}
    for sample in targets.samples:
        if sample in by_id:
            chosen[sample] = by_id[sample]
        elif not forgotten("sample", sample):
            raise NotFoundError(f"no sample {quoted(sample)} in the store")
    for item in targets.items:
        matches = [r for r in rows if r["target_item"] == item
                   or any(h["item"] == item for h in r.get("history", []))]
        if not matches and not forgotten("item", item):
            raise NotFoundError(f"no sample mentions item {quoted(item)}")
        chosen.update((r["id"], r) for r in matches)
    samples = sorted((Sample.from_record(r) for r in chosen.values()), key=lambda s: s.order)
    return samples, already
