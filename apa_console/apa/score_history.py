"""The served recommender's AUC over time: each whole-split score the CLI or TUI runs adds
one point, tagged with the forget request it ran after, so a chart can show what each
forget did to quality. No user or sample id is kept: a point outlives forgets."""

from __future__ import annotations

from typing import Any

from apa_console.errors import StoreLockedError
from apa_console.store import records
from apa_console.store.document import Store, now_iso

# Recording is a side note to a score, so it never waits long for a writer (a forget holds
# the lock for its whole retrain); a score while one runs goes unrecorded.
RECORD_WAIT_S = 0.2


def score_point(report: Any, split: str, after_request: str | None) -> dict[str, Any]:
    """One history point of a ScoreReport (see serving.ScoreReport)."""
    return {
        "time": now_iso(),
        "split": split,
        "samples": len(report.sample_ids),
        "positives": int(sum(int(label) for label in report.labels)),
        "auc": report.auc,
        "method": report.method,
        "strategy": report.strategy,
        "adapters": list(report.adapter_ids),
        "after_request": after_request,
    }


def record_score(store: Store, report: Any, split: str) -> bool:
    """Append the score of a whole split; False when another writer holds the store."""
    try:
        with store.transaction(wait_s=RECORD_WAIT_S) as db:
            last = records.last_done_request(db)
            records.append_score_point(db, score_point(report, split,
                                                       last["id"] if last else None))
    except StoreLockedError:
        return False
    return True
