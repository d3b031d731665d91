"""MovieLens-100K → TALLRec movie samples, reproducing TALLRec's preprocessing exactly.

TALLRec (preprocess_movie.py) groups `u.data` by user in order of first appearance, sorts
each user's ratings by timestamp (a stable sort, so ties keep file order), turns every
rating after the first ten into a sequence whose history is the ten ratings before it,
keeps the last 10,000 sequences and cuts them 80/10/10 in order. A rating above 3 is
"liked". We keep MovieLens' own user and item ids.

Two deliberate differences, neither of which changes anything on MovieLens-100K:
TALLRec sorts timestamps as strings (all of them have nine digits there, so numeric order
is the same), and looks titles up by position in u.item (the ids there run 1..1682 in
order, so looking them up by id is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apa_console.data.ingest import (
    ParsedDataset,
    decode_text,
    numbered_lines,
    read_bytes,
    require_dir,
    sample_id,
    split_in_order,
)
from apa_console.errors import DataError
from apa_console.prompting import MOVIE_INSTRUCTION, answer_text, build_input
from apa_console.samples import HistoryEntry, Sample

HISTORY_LENGTH = 10
SEQUENCES_KEPT = 10_000
LIKED_ABOVE = 3  # a rating of 4 or 5 is "liked" / "Yes."
RATINGS_FILE = "u.data"
ITEMS_FILE = "u.item"


@dataclass(frozen=True)
class Rating:
    user: str
    item: str
    rating: int
    timestamp: int


def read_titles(path: Path) -> dict[str, str]:
    """Item id → title from `u.item` (pipe-separated, Latin-1)."""
    raw = read_bytes(path)
    _refuse_utf8_lines(path, raw)
    titles: dict[str, str] = {}
    for number, line in numbered_lines(raw.decode("latin-1")):
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip() or not fields[1]:
            raise DataError(f"{path}:{number}: expected `id|title|...`, got {line[:60]!r}")
        item = fields[0].strip()
        if item in titles:
            raise DataError(f"{path}:{number}: item id {item} appears twice")
        titles[item] = fields[1]
    return titles


def _refuse_utf8_lines(path: Path, raw: bytes) -> None:
    """Latin-1 decodes any byte, so a UTF-8 file would silently become mojibake titles.

    A non-ASCII Latin-1 title is almost never valid UTF-8 (é is a lone 0xE9), while a UTF-8
    title always is: that tells the two apart line by line.
    """
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        raise DataError(
            f"{path}:{number}: looks UTF-8 encoded; MovieLens-100K's u.item is Latin-1 "
            "(re-encode it to ISO-8859-1)"
        )


def read_ratings(path: Path, titles: dict[str, str]) -> list[Rating]:
    """`u.data`: tab-separated user, item, rating, timestamp; ASCII."""
    text = decode_text(path, read_bytes(path), "ascii")
    ratings: list[Rating] = []
    for number, line in numbered_lines(text):
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataError(
                f"{path}:{number}: expected 4 tab-separated fields "
                f"(user, item, rating, timestamp), got {len(fields)}"
            )
        user, item, rating_text, timestamp_text = (field.strip() for field in fields)
        if not user:
            raise DataError(f"{path}:{number}: empty user id")
        if item not in titles:
            raise DataError(f"{path}:{number}: item {item!r} is not in {ITEMS_FILE}")
        try:
            rating = int(rating_text)
            timestamp = int(timestamp_text)
        except ValueError:
            raise DataError(
                f"{path}:{number}: rating and timestamp must be integers, "
                f"got {rating_text!r} and {timestamp_text!r}"
            ) from None
        if not 1 <= rating <= 5:
            raise DataError(f"{path}:{number}: rating {rating} is outside 1..5")
        ratings.append(Rating(user, item, rating, timestamp))
    if not ratings:
        raise DataError(f"{path}:1: no ratings in the file")
    return ratings


def build_sequences(ratings: list[Rating]) -> list[tuple[list[Rating], Rating]]:
    """Every (ten previous ratings, rating) pair, users in order of first appearance."""
    by_user: dict[str, list[Rating]] = {}
    for rating in ratings:
        by_user.setdefault(rating.user, []).append(rating)
    sequences = []
    for user_ratings in by_user.values():
        ordered = sorted(user_ratings, key=lambda rating: rating.timestamp)  # stable
        for index in range(HISTORY_LENGTH, len(ordered)):
            sequences.append((ordered[index - HISTORY_LENGTH : index], ordered[index]))
    return sequences


def to_sample(
    order: int, split: str, history: list[Rating], target: Rating, titles: dict[str, str]
) -> Sample:
    entries = tuple(
        HistoryEntry(item=r.item, title=titles[r.item], liked=r.rating > LIKED_ABOVE)
        for r in history
    )
    label = int(target.rating > LIKED_ABOVE)
    return Sample(
        id=sample_id(order),
        user_id=target.user,
        target_item=target.item,
        target_title=titles[target.item],
        label=label,
        split=split,
        instruction=MOVIE_INSTRUCTION,
        input=build_input(entries, titles[target.item], "movie"),
        output=answer_text(label),
        history=entries,
        order=order,
    )


def load_movielens(directory: Path) -> ParsedDataset:
    directory = require_dir(Path(directory))
    titles = read_titles(directory / ITEMS_FILE)
    ratings = read_ratings(directory / RATINGS_FILE, titles)
    sequences = build_sequences(ratings)
    if not sequences:
        raise DataError(
            f"{directory / RATINGS_FILE}:1: no user has more than {HISTORY_LENGTH} ratings, "
            "so there are no sequences"
        )
    kept = sequences[-SEQUENCES_KEPT:]
    samples: dict[str, list[Sample]] = {}
    order = 0
    for split, part in split_in_order(kept).items():
        samples[split] = []
        for history, target in part:
            samples[split].append(to_sample(order, split, history, target, titles))
            order += 1
    return ParsedDataset(
        name="movielens-100k",
        domain="movie",
        source=str(directory.resolve()),
        samples=samples,
        details={"sequences_total": len(sequences), "sequences_kept": len(kept)},
    )
