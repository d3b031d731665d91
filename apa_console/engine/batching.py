"""How rows are grouped into forward passes: length-sorted batches, the prefix all rows of a
batch share, padding ids, and the progress events of a batched pass."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from apa_console.errors import UsageError
from apa_console.progress import ProgressEvent


def length_sorted_batches(token_ids: Sequence[list[int]], batch_size: int) -> list[list[int]]:
    """Row positions in batches of `batch_size`, longest rows first.

    A batch is padded to its longest row, so batches of similar lengths waste little on
    padding. Longest first lets the first batch size the
    allocator's buffers for all later ones. Ties keep input order, so batches are
    deterministic; results do not depend on batching (see the module docstring).
    """
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, not {batch_size}")
    order = sorted(range(len(token_ids)), key=lambda row: (-len(token_ids[row]), row))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def shared_prefix_length(token_ids: Sequence[list[int]]) -> int:
    """Length of the longest token prefix that all rows share, leaving each row at least one
    token of its own (whose state gives the answer). 0 for fewer than two rows: one row has
    nothing to share, and running its prefix separately would only add a pass."""
    if len(token_ids) < 2:
        return 0
    first = token_ids[0]
    length = min(len(ids) for ids in token_ids) - 1
    for ids in token_ids[1:]:
        while length > 0 and ids[:length] != first[:length]:
            length -= 1
    return max(length, 0)


def pad_token_id(tokenizer: Any) -> int:
    # Any id works for right padding (masked, and after the text); prefer the real pad.
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def rate_event(task: str, done: int, total: int, started: float) -> ProgressEvent:
    elapsed = max(time.perf_counter() - started, 1e-9)
    rate = done / elapsed
    eta = (total - done) / rate if rate > 0 else None
    return ProgressEvent(task, done, total, samples_per_s=rate, eta_s=eta, unit="sample")
