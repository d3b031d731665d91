"""MovieLens-100K → TALLRec movie samples, reproducing TALLRec's preprocessing exactly.

TALLRec (preprocess_movie.py) builds sliding windows of ten ratings over `u.data`
(`windows.py`), keeps the last 10,000 sequences and cuts them 80/10/10 in order. A rating
above 3 is "liked". We keep MovieLens' own user and item ids.

Two deliberate differences, neither of which changes anything on MovieLens-100K:
TALLRec sorts timestamps as strings (all of them have nine digits there, so numeric order
is the same), and looks titles up by position in u.item (the ids there run 1..1682 in
order, so looking them up by id is the same).
"""

from __future__ import annotations

from pathlib import Path

from apa_console.data.ingest import (
    ParsedDataset,
    decode_text,
    numbered_lines,
    read_bytes,
    refuse_control_characters,
    require_dir,
)
from apa_console.data.windows import Interaction, sliding_windows, windowed_samples
from apa_console.errors import DataError
from apa_console.prompting import MOVIE_INSTRUCTION

HISTORY_LENGTH = 10
SEQUENCES_KEPT = 10_000
LIKED_ABOVE = 3  # a rating of 4 or 5 is "liked" / "Yes."
RATINGS_FILE = "u.data"
ITEMS_FILE = "u.item"


def read_titles(path: Path) -> dict[str, str]:
    """Item id → title from `u.item` (pipe-separated, Latin-1)."""
    raw = read_bytes(path)
    _refuse_utf8_lines(path, raw)
    titles: dict[str, str] = {}
    for number, line in numbered_lines(raw.decode("latin-1")):
        # a tab may sit in a title; any other control byte is damage (Latin-1 maps 0x80-0x9f
        # to C1 controls, so a Windows-1252 file is refused here too)
        refuse_control_characters(path, number, "line", line, allowed="\t")
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


def read_ratings(path: Path, titles: dict[str, str]) -> list[Interaction]:
    """`u.data`: tab-separated user, item, rating, timestamp; ASCII."""
    text = decode_text(path, read_bytes(path), "ascii")
    ratings: list[Interaction] = []
    for number, line in numbered_lines(text):
        refuse_control_characters(path, number, "line", line, allowed="\t")
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
        ratings.append(Interaction(user, item, rating > LIKED_ABOVE, timestamp))
    if not ratings:
        raise DataError(f"{path}:1: no ratings in the file")
    return ratings


def load_movielens(directory: Path) -> ParsedDataset:
    directory = require_dir(Path(directory))
    titles = read_titles(directory / ITEMS_FILE)
    ratings = read_ratings(directory / RATINGS_FILE, titles)
    sequences = sliding_windows(ratings, HISTORY_LENGTH)
    if not sequences:
        raise DataError(
            f"{directory / RATINGS_FILE}:1: no user has more than {HISTORY_LENGTH} ratings, "
            "so there are no sequences"
        )
    kept = sequences[-SEQUENCES_KEPT:]
    samples = windowed_samples(kept, titles, "movie", MOVIE_INSTRUCTION)
    return ParsedDataset(
        name="movielens-100k",
        domain="movie",
        source=str(directory.resolve()),
        samples=samples,
        details={"sequences_total": len(sequences), "sequences_kept": len(kept)},
    )
