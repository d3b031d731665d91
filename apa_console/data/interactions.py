"""An operator's own interaction log → TALLRec samples (`ingest interactions`).

The common shape of recommender data: one row per (user, item, rating or like, time) and an
item table with a title and optional text fields, column names mapped by options. A rating
above `like_above` is "liked" (the APA paper's Amazon data: above 3; a 0/1 like column:
above 0). Samples are TALLRec's sliding windows (`windows.py`), as for MovieLens. Ratings of
items the item table lacks are left out and counted, as TALLRec's join of ratings and
metadata leaves them out. Everything is parsed and checked before the store is touched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from apa_console.data.ingest import MAX_ID_LENGTH, ParsedDataset, refuse_control_characters
from apa_console.data.tables import read_columns, table_format
from apa_console.data.windows import Interaction, sliding_windows, windowed_samples
from apa_console.errors import DataError, UsageError
from apa_console.prompting import instruction_for

LIKE_WORDS = {"true": 1.0, "false": 0.0}  # a like column written as words
MAX_HISTORY = 50  # TALLRec uses 10; far longer histories make prompts no model here fits


@dataclass(frozen=True)
class InteractionSpec:
    """Where each field is and how to read it; defaults are the usual column names."""

    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: str = "rating"
    time_col: str | None = "timestamp"  # None: each user's rows in file order
    items_id_col: str | None = None  # the item table's id column; None: same as item_col
    title_col: str = "title"
    text_cols: tuple[str, ...] = ()  # shown after the title: "Title (brand, platform)"
    like_above: float = 3.0
    history: int = 10
    domain: str = "item"  # the word in TALLRec's question: "… like the target game"
    header: bool = True  # CSV/TSV: False names the columns 1, 2, …

    def check(self) -> None:
        if not 1 <= self.history <= MAX_HISTORY:
            raise UsageError(f"--history must be 1 to {MAX_HISTORY}, got {self.history}")
        if not math.isfinite(self.like_above):
            raise UsageError(f"--like-above must be a finite number, got {self.like_above}")
        # one plain word, as TALLRec's question has it and `ingest tallrec` reads it back
        if not re.fullmatch(r"[A-Za-z][A-Za-z_]{0,39}", self.domain):
            raise UsageError(f"--domain must be one word of letters, got {self.domain[:40]!r}")


def load_interactions(
    ratings_path: Path, items_path: Path, spec: InteractionSpec | None = None
) -> ParsedDataset:
    spec = spec or InteractionSpec()
    spec.check()
    ratings_path, items_path = Path(ratings_path), Path(items_path)
    table_format(ratings_path, "RATINGS")  # an unknown suffix is refused before any reading
    table_format(items_path, "--items")
    titles = read_titles(items_path, spec)
    interactions, unknown = read_interactions(ratings_path, spec, titles)
    windows = sliding_windows(interactions, spec.history)
    if not windows:
        raise DataError(
            f"{ratings_path}:1: no user has more than {spec.history} ratings of items in "
            f"{items_path.name}, so there are no samples (a shorter --history?)"
        )
    samples = windowed_samples(windows, titles, spec.domain, instruction_for(spec.domain))
    return ParsedDataset(
        name="interactions",
        domain=spec.domain,
        source=str(ratings_path.resolve()),
        samples=samples,
        details={
            "items_source": str(items_path.resolve()),
            "interactions": {"read": len(interactions) + unknown, "unknown_item": unknown,
                             "windows": len(windows), "history": spec.history,
                             "like_above": spec.like_above},
        },
    )


def read_titles(path: Path, spec: InteractionSpec) -> dict[str, str]:
    """Item id → the title the prompts show (with the text fields, if any)."""
    id_col = spec.items_id_col or spec.item_col
    wanted = [("--items-id-col" if spec.items_id_col else "--item-col", id_col),
              ("--title-col", spec.title_col),
              *(("--text-col", column) for column in spec.text_cols)]
    rows = read_columns(path, "--items", wanted, spec.header, optional=len(spec.text_cols))
    titles: dict[str, str] = {}
    for line, (item, title, *texts) in rows:
        item = as_id(path, line, id_col, item)
        if item in titles:
            raise DataError(f"{path}:{line}: column {id_col[:40]!r}: item {item[:40]!r} "
                            "appears twice")
        title = as_text(path, line, spec.title_col, title)
        if title is None:
            raise DataError(f"{path}:{line}: column {spec.title_col[:40]!r}: empty title")
        extras = [text for column, value in zip(spec.text_cols, texts, strict=True)
                  if (text := as_text(path, line, column, value)) is not None]
        titles[item] = f"{title} ({', '.join(extras)})" if extras else title
    return titles


def read_interactions(
    path: Path, spec: InteractionSpec, titles: dict[str, str]
) -> tuple[list[Interaction], int]:
    """The rows whose item has a title, and how many rows named an item that has none."""
    wanted = [("--user-col", spec.user_col), ("--item-col", spec.item_col),
              ("--rating-col", spec.rating_col)]
    if spec.time_col is not None:
        wanted.append(("--time-col", spec.time_col))
    interactions: list[Interaction] = []
    unknown = 0
    for line, (user, item, rating, *time) in read_columns(path, "RATINGS", wanted, spec.header):
        user = as_id(path, line, spec.user_col, user)
        item = as_id(path, line, spec.item_col, item)
        liked = as_number(path, line, spec.rating_col, rating) > spec.like_above
        when = as_time(path, line, spec.time_col, time[0]) if time else 0  # 0: file order
        if item not in titles:
            unknown += 1
            continue
        interactions.append(Interaction(user, item, liked, when))
    if not interactions and not unknown:
        raise DataError(f"{path}:1: no rows")
    return interactions, unknown


# -- one value of one cell: CSV gives text, Parquet and JSON give typed values ---------------


def _where(path: Path, line: int | str, column: str) -> str:
    return f"{path}:{line}: column {column[:40]!r}"


def as_id(path: Path, line: int | str, column: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{_where(path, line, column)}: expected an id (text or an integer), "
                        f"got {_kind(value)}")
    text = value.strip()
    if not text:
        raise DataError(f"{_where(path, line, column)}: empty id")
    if len(text) > MAX_ID_LENGTH:
        raise DataError(f"{_where(path, line, column)}: id longer than {MAX_ID_LENGTH} "
                        "characters")
    refuse_control_characters(path, line, f"column {column[:40]!r}", text)
    return text


def as_text(path: Path, line: int | str, column: str, value: Any) -> str | None:
    """A title or text field; None when empty. A tab may sit in one, no other control."""
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{_where(path, line, column)}: expected text, got {_kind(value)}")
    refuse_control_characters(path, line, f"column {column[:40]!r}", value, allowed="\t")
    return value.strip() or None


def as_number(path: Path, line: int | str, column: str, value: Any) -> float:
    if isinstance(value, (bool, int, float, Decimal)):
        number = float(value)
    elif isinstance(value, str) and value.strip().lower() in LIKE_WORDS:
        number = LIKE_WORDS[value.strip().lower()]
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value.strip())
        except ValueError:
            raise DataError(f"{_where(path, line, column)}: expected a number, "
                            f"got {value.strip()[:40]!r}") from None
    else:
        raise DataError(f"{_where(path, line, column)}: expected a number, got {_kind(value)}")
    if not math.isfinite(number):
        raise DataError(f"{_where(path, line, column)}: {number} is not a finite number")
    return number


def as_time(path: Path, line: int | str, column: str, value: Any) -> float | int:
    """Seconds, any number (ints kept exact), or an ISO 8601 date or time (naive is UTC)."""
    if isinstance(value, datetime):
        return _seconds(value)
    if isinstance(value, date):
        return _seconds(datetime(value.year, value.month, value.day))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return as_number(path, line, column, text)
        except DataError:
            pass
        try:
            return _seconds(datetime.fromisoformat(text))
        except ValueError:
            raise DataError(f"{_where(path, line, column)}: expected a number or an ISO 8601 "
                            f"time, got {text[:40]!r}") from None
    if isinstance(value, (float, Decimal)):
        return as_number(path, line, column, value)
    raise DataError(f"{_where(path, line, column)}: expected a time, got {_kind(value)}")


def _seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _kind(value: Any) -> str:
    return "nothing" if value is None or value == "" else type(value).__name__
