"""Plain-text formatting of durations, counts and ids, shared by every front-end."""

from __future__ import annotations

# every front-end imports it from here; the text rules live one layer down (fileio uses them)
from apa_console.safe_text import terminal_safe as terminal_safe


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """"1 shard", "2 shards"; `many` for an irregular plural ("entry", "entries")."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


MIN_AUC_SAMPLES = 10  # below this an AUC is reported with a warning, not as a bare number


def auc_summary(auc: float | None, samples: int, positives: int, what: str) -> str:
    """"AUC 0.7321 over 48 test samples", saying so when the number means little: one
    class only (no AUC at all) or fewer than MIN_AUC_SAMPLES samples."""
    counted = plural(samples, f"{what} sample")
    if auc is None:
        label = "Yes" if positives else "No"
        return f"no AUC: {counted}, all labelled {label} (AUC needs both labels)"
    if samples < MIN_AUC_SAMPLES:
        return (f"AUC {auc:.4f} over only {counted} "
                f"(fewer than {MIN_AUC_SAMPLES}: not a reliable estimate)")
    return f"AUC {auc:.4f} over {counted}"


def when(iso: str | None) -> str:
    """"2026-01-03T09:00:00Z" → "2026-01-03 09:00" (UTC, as the store records it)."""
    if not iso:
        return "–"
    return iso.replace("T", " ")[:16]


def shard_list(shards: list[int]) -> str:
    return ", ".join(str(k) for k in shards) if shards else "–"


def split_counts(removed: dict | None) -> str:
    """{"train": 6, "valid": 1, "test": 0} → "6/1/0" (train/valid/test)."""
    if not removed:
        return "–"
    return "/".join(str(removed.get(split, 0)) for split in ("train", "valid", "test"))
