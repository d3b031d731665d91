"""What a referenced file that is gone means: corruption, or a commit that came between
reading apa.json and reading the file (a forget deletes its removed data's files at once)."""

from __future__ import annotations

import json
from pathlib import Path

from apa_console.errors import StoreChangedError, StoreInvalidError

DOCUMENT = "apa.json"


def missing_file_error(path: Path, relative: str) -> StoreInvalidError | StoreChangedError:
    """The error for `relative` (at `path`) not found: StoreChangedError when the committed
    apa.json no longer names it, so the caller retries on the new state; else exit 5."""
    root = Path(str(path)[: -len(relative)]) if str(path).endswith(relative) else None
    try:
        text = (root / DOCUMENT).read_text(encoding="utf-8") if root is not None else ""
        # as JSON writes it too: a name with a newline or a quote is escaped in the file
        still_named = root is None or relative in text or json.dumps(relative)[1:-1] in text \
            or json.dumps(relative, ensure_ascii=False)[1:-1] in text
    except (OSError, UnicodeDecodeError):
        still_named = True
    if still_named:
        return StoreInvalidError(f"{path} is referenced by the store but missing")
    return StoreChangedError("the store changed while this command read it (another process "
                             "committed); run it again")
