"""Who runs shard jobs (`shard_jobs.py`): the default runs them one after another in this
process, on the caller's backbone; `ray_dispatch.py` (imported only when `--workers` or
`--ray-address` asks for it) runs them on Ray workers, each with its own copy of the model.
A dispatcher yields each finished job in completion order.

Dispatchers know nothing of the store: the caller names where each adapter folder goes and
commits the results itself, so it stays the single writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apa_console.engine.dispatch_options import RAY_EXTRA, DispatchOptions
from apa_console.engine.shard_jobs import Dispatcher, SequentialDispatcher
from apa_console.errors import UsageError


@contextmanager
def open_dispatcher(backbone, options: DispatchOptions | None) -> Iterator[Dispatcher]:
    """The dispatcher `options` ask for. Ray is imported only for a distributed one, and
    started (or joined) only when its first jobs arrive; it is left when this exits."""
    if options is None or not options.distributed:
        yield SequentialDispatcher(backbone)
        return
    options.check()
    try:
        from apa_console.engine.ray_dispatch import RayDispatcher
    except ImportError as exc:
        if "ray" not in str(exc):
            raise
        raise UsageError(f"--workers and --ray-address need Ray: {RAY_EXTRA}") from None
    dispatcher = RayDispatcher(backbone, options)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
