"""Dataset loaders. Each parses a whole source into a `ParsedDataset` before the store is
touched; `ingest.write_dataset` then commits the chosen samples in one transaction."""

from apa_console.data.bookcrossing import load_bookcrossing
from apa_console.data.demo import generate_demo
from apa_console.data.ingest import (
    DEFAULT_SEED,
    DEFAULT_SIZES,
    ParsedDataset,
    check_sizes,
    ensure_no_dataset,
    write_dataset,
)
from apa_console.data.movielens import load_movielens
from apa_console.data.tallrec import export_tallrec, load_tallrec

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_SIZES",
    "ParsedDataset",
    "check_sizes",
    "ensure_no_dataset",
    "export_tallrec",
    "generate_demo",
    "load_bookcrossing",
    "load_movielens",
    "load_tallrec",
    "write_dataset",
]
