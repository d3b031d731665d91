"""Book-Crossing (`BX-Book-Ratings.csv`, `BX-Books.csv`) → TALLRec book samples.

Following TALLRec's book setting: ratings of books missing from BX-Books.csv are dropped
(an inner join), users need at least three remaining ratings, a rating above 5 is "liked",
and each user gives one sample whose target is their last rating and whose history is up to
ten ratings before it. Titles read "TITLE written by AUTHOR". The files carry no
timestamps, so "last" means last in file order, and users (in order of first appearance)
are cut 80/10/10 in order.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from apa_console.data.ingest import (
    ParsedDataset,
    decode_text,
    read_bytes,
    refuse_control_characters,
    require_dir,
    sample_id,
    split_in_order,
)
from apa_console.errors import DataError
from apa_console.prompting import BOOK_INSTRUCTION, answer_text, build_input
from apa_console.samples import HistoryEntry, Sample

RATINGS_FILE = "BX-Book-Ratings.csv"
BOOKS_FILE = "BX-Books.csv"
RATINGS_HEADER = ("user-id", "isbn", "book-rating")
BOOKS_HEADER = ("isbn", "book-title", "book-author")
MIN_RATINGS = 3
HISTORY_LENGTH = 10
LIKED_ABOVE = 5


def _rows(path: Path, header: tuple[str, ...]):
    """(line number, fields) of a `;`-separated, quoted, Latin-1 file after its header."""
    text = decode_text(path, read_bytes(path), "latin-1")
    # The published files escape quotes inside titles as \" .
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", escapechar="\\")
    first = True
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if first:
                first = False
                for value in fields:
                    refuse_control_characters(path, reader.line_num, "the header", value)
                names = tuple(field.strip().lower() for field in fields[: len(header)])
                if names != header:
                    raise DataError(
                        f"{path}:{reader.line_num}: expected a header starting "
                        f"{';'.join(header)}, got {';'.join(fields)[:60]!r}"
                    )
                width = len(fields)
                labels = [f"field {field.strip()!r}" for field in fields]
                continue
            if len(fields) != width:
                raise DataError(
                    f"{path}:{reader.line_num}: expected {width} `;`-separated fields, "
                    f"got {len(fields)}"
                )
            for label, value in zip(labels, fields):
                # a tab may sit in a title; a newline in a quoted field, or any other
                # control byte, is damage (0x80-0x9f are C1 controls in Latin-1)
                refuse_control_characters(path, reader.line_num, label, value, allowed="\t")
            yield reader.line_num, [field.strip() for field in fields]
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    if first:
        raise DataError(f"{path}:1: empty file")


def read_books(path: Path) -> dict[str, str]:
    """ISBN → "TITLE written by AUTHOR"."""
    books: dict[str, str] = {}
    for line, fields in _rows(path, BOOKS_HEADER):
        isbn, title, author = fields[:3]
        if not isbn or not title:
            raise DataError(f"{path}:{line}: empty ISBN or title")
        if isbn in books:
            raise DataError(f"{path}:{line}: ISBN {isbn} appears twice")
        books[isbn] = f"{title} written by {author}" if author else title
    return books


def read_ratings(path: Path, books: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    """User → [(ISBN, rating)] in file order, books unknown to BX-Books.csv dropped."""
    by_user: dict[str, list[tuple[str, int]]] = {}
    for line, fields in _rows(path, RATINGS_HEADER):
        user, isbn, rating_text = fields[:3]
        if not user or not isbn:
            raise DataError(f"{path}:{line}: empty user id or ISBN")
        try:
            rating = int(rating_text)
        except ValueError:
            raise DataError(
                f"{path}:{line}: rating must be an integer, got {rating_text!r}"
            ) from None
        if not 0 <= rating <= 10:
            raise DataError(f"{path}:{line}: rating {rating} is outside 0..10")
        if isbn in books:
            by_user.setdefault(user, []).append((isbn, rating))
    return by_user


def load_bookcrossing(directory: Path) -> ParsedDataset:
    directory = require_dir(Path(directory))
    books = read_books(directory / BOOKS_FILE)
    by_user = read_ratings(directory / RATINGS_FILE, books)
    eligible = [(user, ratings) for user, ratings in by_user.items() if len(ratings) >= MIN_RATINGS]
    if not eligible:
        raise DataError(
            f"{directory / RATINGS_FILE}:1: no user has {MIN_RATINGS} or more ratings "
            "of books listed in BX-Books.csv"
        )
    samples: dict[str, list[Sample]] = {}
    order = 0
    for split, part in split_in_order(eligible).items():
        samples[split] = []
        for user, ratings in part:
            *earlier, (target_isbn, target_rating) = ratings
            history = tuple(
                HistoryEntry(item=isbn, title=books[isbn], liked=rating > LIKED_ABOVE)
                for isbn, rating in earlier[-HISTORY_LENGTH:]
            )
            label = int(target_rating > LIKED_ABOVE)
            samples[split].append(
                Sample(
                    id=sample_id(order),
                    user_id=user,
                    target_item=target_isbn,
                    target_title=books[target_isbn],
                    label=label,
                    split=split,
                    instruction=BOOK_INSTRUCTION,
                    input=build_input(history, books[target_isbn], "book"),
                    output=answer_text(label),
                    history=history,
                    order=order,
                )
            )
            order += 1
    return ParsedDataset(
        name="bookcrossing",
        domain="book",
        source=str(directory.resolve()),
        samples=samples,
        details={"users_eligible": len(eligible)},
    )
