"""The CLI's progress display starts with the first event: a plan printed and a confirmation
asked before any work are not drawn over, and Ctrl-C keeps its usual meaning until then."""

from __future__ import annotations

import signal

from apa_console.cli.progress_view import live_progress
from apa_console.progress import ProgressEvent


def test_bars_and_the_cancel_handler_start_with_the_first_event():
    before = signal.getsignal(signal.SIGINT)
    with live_progress(quiet=True) as (bars, cancel):
        assert not bars.started and signal.getsignal(signal.SIGINT) is before
        bars(ProgressEvent("shard-0 (train)", 1, 4))
        assert bars.started and signal.getsignal(signal.SIGINT) is not before
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the first Ctrl-C cancels
        assert cancel.cancelled
    assert signal.getsignal(signal.SIGINT) is before


def test_a_block_without_events_leaves_ctrl_c_alone():
    before = signal.getsignal(signal.SIGINT)
    with live_progress(quiet=True) as (bars, _):
        pass
    assert not bars.started and signal.getsignal(signal.SIGINT) is before
