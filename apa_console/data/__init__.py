"""Dataset loaders. Each parses a whole source into a `ParsedDataset` before the store is
touched; `ingest.write_dataset` then commits the chosen samples in one transaction.

Names load on first use (PEP 562), so a command that never ingests never imports a parser.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "DEFAULT_SEED": "ingest", "DEFAULT_SIZES": "ingest", "ParsedDataset": "ingest",
    "check_sizes": "ingest", "ensure_no_dataset": "ingest", "write_dataset": "ingest",
    "generate_demo": "demo", "load_bookcrossing": "bookcrossing", "load_movielens": "movielens",
    "export_tallrec": "tallrec", "load_tallrec": "tallrec", "load_interactions": "interactions",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
