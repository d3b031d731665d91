"""The sample: one recommendation instruction built from a user's history.

This is the record every other part reads: the store keeps it as a `samples` row, the
engine turns its text into a prompt, partitions and forget requests refer to its `id`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SPLITS = ("train", "valid", "test")


class Split(str, Enum):
    """A split by name, for the command line (`--split train|valid|test`)."""

    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


@dataclass(frozen=True)
class HistoryEntry:
    item: str
    title: str
    liked: bool


@dataclass(frozen=True)
class Sample:
    id: str
    user_id: str
    target_item: str
    target_title: str
    label: int  # 1 = the user liked the target ("Yes."), 0 = "No."
    split: str
    instruction: str
    input: str
    output: str
    history: tuple[HistoryEntry, ...] = field(default_factory=tuple)
    order: int = 0  # position in the source dataset's full sequence list

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["history"] = [asdict(entry) for entry in self.history]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Sample:
        fields = dict(record)
        fields["history"] = tuple(HistoryEntry(**entry) for entry in record.get("history", []))
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in fields.items() if key in known})
