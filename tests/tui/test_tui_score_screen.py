"""The score screen says what its AUC rests on: the split and whose samples, how many (an
AUC over two samples is flagged, not a finding), and which weight column is which shard."""

from __future__ import annotations

import copy

import pytest
from pilot_helpers import console, settle, text_of
from test_tui_snapshots import FIXED_REPORT

from apa_console.tui.screens.score import ScoreScreen
from apa_console.tui.widgets.console_table import ConsoleTable

pytestmark = pytest.mark.anyio


def two_sample_report() -> dict:
    report = copy.deepcopy(FIXED_REPORT)
    report["rows"] = report["rows"][:2]
    report.update(samples=2, auc=1.0, split="test", user="user0")
    return report


async def test_an_auc_over_two_samples_says_so_and_is_flagged(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pilot.app.push_screen(ScoreScreen("user0", report=two_sample_report()))
        await settle(pilot)
        summary = text_of(pilot, "#score-summary")
        assert "APA(D) on user user0's test split" in summary
        assert "⚠ AUC 1.0000 over only 2 test samples (fewer than 10" in summary
        assert "over 3 shard adapters (w0 = shard 0's)" in summary


async def test_one_label_only_gives_no_auc_and_says_why(display_store):
    report = two_sample_report()
    report["rows"][1]["label"] = 1
    report["auc"] = None
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pilot.app.push_screen(ScoreScreen(report=report))
        await settle(pilot)
        assert "⚠ no AUC: 2 test samples, all labelled Yes" in text_of(pilot, "#score-summary")


async def test_each_weight_column_names_its_shard(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pilot.app.push_screen(ScoreScreen(report=FIXED_REPORT))
        await settle(pilot)
        table = pilot.app.screen.query_one("#scores", ConsoleTable)
        labels = [column.label.plain for column in table.ordered_columns]
        assert labels[-3:] == ["w0", "w1", "w2"]
        first = [str(cell) for cell in table.get_row("s000005")]
        assert first[-3:] == ["0.70", "0.20", "0.10"]  # shard 0's adapter weighs most
        weights = text_of(pilot, "#weights")
        assert "w0 shard-0-v2" in weights and "w2 shard-2-v1" in weights
        summary = text_of(pilot, "#score-summary")
        assert "APA(D) on test split" in summary and "over only 4 test samples" in summary
