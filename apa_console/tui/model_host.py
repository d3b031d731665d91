"""The one backbone the console loads, shared by every worker that needs the model.

Loading takes seconds, so it happens once, in the first worker that asks. Scoring and
retraining both patch the model's layers while they run, so only one of them may hold it at
a time; a second waits (still cancellable) until the first lets go.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from apa_console.progress import MODEL_TASK, CancelToken, ProgressCallback, ProgressEvent
from apa_console.store.document import Store
from apa_console.workflows.model import open_backbone


class ModelHost:
    def __init__(self, store: Store, model: str | None = None, device: str | None = None):
        self.store = store
        self.model = model
        self.device = device
        self._backbone = None
        self._load_lock = threading.Lock()
        self._use_lock = threading.Lock()

    def _load(self, progress: ProgressCallback):
        with self._load_lock:
            if self._backbone is None:
                progress(ProgressEvent(MODEL_TASK, 0, 1, message="loading the model…"))
                self._backbone = open_backbone(self.store, self.model, self.device)
            progress(ProgressEvent(MODEL_TASK, 1, 1,
                                   message=f"{self._backbone.info.get('name', '')} loaded"))
            return self._backbone

    @contextmanager
    def use(self, progress: ProgressCallback, cancel: CancelToken) -> Iterator[object]:
        """Hold the backbone (loading it the first time) for one job."""
        waiting_said = False
        while not self._use_lock.acquire(timeout=0.1):
            cancel.raise_if_cancelled()
            if not waiting_said:
                progress(ProgressEvent(MODEL_TASK, 0, 1,
                                       message="waiting for the running job to free the model…"))
                waiting_said = True
        try:
            cancel.raise_if_cancelled()
            yield self._load(progress)
        finally:
            self._use_lock.release()
