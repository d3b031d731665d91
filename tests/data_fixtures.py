"""Hand-made source files for the ingest tests, and helpers to run the CLI on a store.

The tiny MovieLens fixture, in file order, interleaves four users so that first appearance
gives the order 7, 3, 12, 5:
- user 7 rates items 1..13 with timestamps falling as the item number rises, except that
  items 6 and 5 share a timestamp and the file lists 6 first (a tie that must keep file
  order, not item order), so the timestamp order is 13 12 11 10 9 8 7 6 5 4 3 2 1 and the
  user gives 3 sequences;
- user 3 rates items 1..12 in time order (2 sequences), user 12 only 10 items (none),
  user 5 items 1..15 in time order (5 sequences).
10 sequences cut 80/10/10: train = 7×3, 3×2, 5×3; valid = user 5 → item 14; test → item 15.
The rating of item k is k % 5 + 1, so items with k % 5 in {3, 4} are liked.
Item 3 and item 4 have Latin-1 titles.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apa_console.cli.app import app

# ../shared beside the repository root (where CI and every checkout have it); $APA_ML100K wins.
REAL_ML100K = Path(
    os.environ.get("APA_ML100K")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
)

LATIN1_TITLES = {"3": "Misérables, Les (1995)", "4": "Café au Lait (1993)"}


def title_of(item: int) -> str:
    return LATIN1_TITLES.get(str(item), f"Movie {item} (1990)")


def rating_of(item: int) -> int:
    return item % 5 + 1


def tiny_ratings() -> list[tuple[str, int, int, int]]:
    """(user, item, rating, timestamp) rows in file order."""
    per_user = {
        "7": [
            (k, 990 - 10 * k if k != 5 else 990 - 10 * 6)
            for k in (1, 2, 3, 4, 6, 5, *range(7, 14))
        ],
        "3": [(k, 500 + k) for k in range(1, 13)],
        "12": [(k, 700 + k) for k in range(1, 11)],
        "5": [(k, 600 + k) for k in range(1, 16)],
    }
    rows = []
    longest = max(len(ratings) for ratings in per_user.values())
    for position in range(longest):  # round-robin keeps first appearance 7, 3, 12, 5
        for user, ratings in per_user.items():
            if position < len(ratings):
                item, timestamp = ratings[position]
                rows.append((user, item, rating_of(item), timestamp))
    return rows


def write_tiny_movielens(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    items = "".join(
        f"{k}|{title_of(k)}|01-Jan-1995||http://example.invalid/{k}|0|1|0\n" for k in range(1, 16)
    )
    (directory / "u.item").write_bytes(items.encode("latin-1"))
    data = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in tiny_ratings())
    (directory / "u.data").write_bytes(data.encode("ascii"))
    return directory


runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


def new_store(path: Path) -> Path:
    result = cli("init", "--store", path)
    assert result.exit_code == 0, result.output
    return path


def store_bytes(path: Path) -> bytes:
    return (path / "apa.json").read_bytes()


def assert_one_line_error(result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def plant_tallrec(store_dir: Path, source: Path) -> None:
    """Store TALLRec files the way ingests did before control characters were refused: the
    stores they wrote still hold such ids and titles, and every command must show them
    safely."""
    from apa_console.data import tallrec
    from apa_console.data.ingest import DEFAULT_SEED, DEFAULT_SIZES, write_dataset
    from apa_console.store.document import Store

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tallrec, "refuse_control_characters", lambda *args, **kwargs: None)
        parsed = tallrec.load_tallrec(source)
    write_dataset(Store.open(store_dir), parsed, DEFAULT_SIZES, DEFAULT_SEED)
