"""The Charts section (5): what each chart draws from the display store after more use
(`add_chart_history`), how it is reached (nav key, `[`/`]`, `l` on Shards, the palette),
what it says with nothing to draw, and SVG snapshots of every chart at 80×24 and 120×40."""

from __future__ import annotations

import pytest
from display_store import R0003_FORGET_S, R0003_FULL_RETRAIN_S, add_chart_history
from pilot_helpers import console, row_keys, settle, text_of, wait_until
from rich.text import Text
from store_fixtures import make_store
from textual.command import CommandList
from textual.widgets import TabbedContent

from apa_console.store.document import get_meta, update_meta
from apa_console.tui.screens.charts import CHARTS, ChartsScreen
from apa_console.tui.widgets.bar_charts import ForgetCostChart, ValidErrorChart
from apa_console.tui.widgets.plots import AucChart, LossChart
from apa_console.tui.widgets.user_shard_map import UserShardMap

NARROW, WIDE = (80, 24), (120, 40)
SHOWN_STORE_PATH = "/srv/apa/store"  # the header's store path, fixed for snapshots


@pytest.fixture
def chart_store(display_store):
    return add_chart_history(display_store)


def active_chart(pilot) -> str:
    return pilot.app.screen.query_one(TabbedContent).active


def plotted(pilot, chart_type) -> str:
    """The text a plotext chart draws now (axes, tick labels, title), without colour."""
    chart = pilot.app.screen.query_one(chart_type)
    assert chart.plot.display, "the chart shows its empty-state line, not a plot"
    return Text.from_ansi(chart.plot.plt.build()).plain


def drawn(pilot, widget_type) -> str:
    return pilot.app.screen.query_one(widget_type).render().plain


@pytest.mark.anyio
async def test_five_opens_charts_and_brackets_step_through_every_chart(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ChartsScreen)
        seen = [active_chart(pilot)]
        for _ in CHARTS:
            await pilot.press("right_square_bracket")
            seen.append(active_chart(pilot))
        assert seen == [chart for chart, _, _ in CHARTS] + ["loss"]
        await pilot.press("left_square_bracket")
        assert active_chart(pilot) == "error"
        await pilot.press("slash")  # no table in view: nothing to search
        assert not pilot.app.screen.query_one("#table-search").display


@pytest.mark.anyio
async def test_loss_chart_follows_the_shard_and_marks_where_each_epoch_begins(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        assert row_keys(pilot, "#loss-shards") == ["0", "1", "2"]
        one_epoch = plotted(pilot, LossChart)
        assert "shard-0-v2 loss" in one_epoch and "e2" not in one_epoch
        await pilot.press("down")  # shard 1: trained for two epochs of 6 steps
        await settle(pilot)
        two_epochs = plotted(pilot, LossChart)
        assert "shard-1-v1 loss" in two_epochs and "e2" in two_epochs
        assert "│" in two_epochs.split("\n")[3]  # the epoch mark crosses the plot
        assert text_of(pilot, "#loss-chart .chart-note").startswith("12 steps over 2 epochs")


@pytest.mark.anyio
async def test_l_on_shards_opens_the_loss_chart_of_the_highlighted_shard(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down", "down", "l")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ChartsScreen) and active_chart(pilot) == "loss"
        assert "shard-2-v1 loss" in plotted(pilot, LossChart)


@pytest.mark.anyio
async def test_map_lists_users_spread_over_shards_first(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5", "right_square_bracket")
        await settle(pilot)
        assert text_of(pilot, "#map-summary").strip() == (
            "4 of 6 users in one shard · 1 span 2 shards · 1 span 3 shards "
            "(forgetting one retrains up to 3 adapters)")
        rows = drawn(pilot, UserShardMap).splitlines()
        assert rows[0].split() == ["user", "span", "0", "1", "2"]
        assert rows[1].split() == ["user1", "3", "1", "4", "1"]
        assert rows[2].split() == ["user0", "2", "5", "·", "1"]


@pytest.mark.anyio
async def test_auc_chart_has_one_point_per_score_labelled_by_the_forget_before_it(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot)
        plot = plotted(pilot, AucChart)
        labels = [word for word in plot.split() if word in ("start", "r0001", "r0003")]
        assert labels == ["start", "r0001", "r0003"]  # the second r0001 score is not relabelled
        note = text_of(pilot, "#auc-chart .chart-note")
        assert note.startswith("4 scores · last 0.710 on 8 test samples")
        assert "4 on fewer than 10 samples" in note


@pytest.mark.anyio
async def test_auc_chart_draws_each_split_in_its_own_colour(chart_store):
    with chart_store.transaction() as db:
        history = get_meta(db)["score_history"]
        update_meta(db, score_history=[*history, {**history[-1], "split": "valid",
                                                  "auc": 0.58, "samples": 12}])
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        pilot.app.screen.show_chart("auc")
        await settle(pilot)
        note = text_of(pilot, "#auc-chart .chart-note")
        assert "last 0.580 on 12 valid samples" in note and "cyan: test, magenta: valid" in note


@pytest.mark.anyio
async def test_forget_cost_sets_each_forget_beside_a_full_retrain(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5")
        await settle(pilot)
        pilot.app.screen.show_chart("cost")
        await settle(pilot)
        text = drawn(pilot, ForgetCostChart)
        r0003 = text[text.index("r0003"):]
        assert f"{R0003_FORGET_S:.1f}s {R0003_FORGET_S / R0003_FULL_RETRAIN_S:.2f}×" in r0003
        assert f"{R0003_FULL_RETRAIN_S:.1f}s\n" in r0003  # recorded in the receipt: no "~"
        # r0001's receipt predates the estimate: today's adapters' times, marked "~"
        assert "15.0s ~" in text and "2 of 3 shards retrained" in r0003


@pytest.mark.anyio
async def test_validation_error_bars_name_every_adapter_and_its_error(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await pilot.press("5", "left_square_bracket")
        await settle(pilot)
        lines = drawn(pilot, ValidErrorChart).splitlines()
        assert [line.split()[0] for line in lines[:3]] == ["shard-0-v2", "shard-1-v1",
                                                           "shard-2-v1"]
        assert [line.split()[-1] for line in lines[:3]] == ["0.410", "0.430", "0.450"]


@pytest.mark.anyio
async def test_the_palette_opens_a_chart_by_name(chart_store):
    async with console(chart_store).run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Chart: Forget cost")
        await wait_until(pilot, lambda: pilot.app.screen.query_one(CommandList).option_count,
                         what="palette hits")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ChartsScreen) and active_chart(pilot) == "cost"


@pytest.mark.anyio
async def test_an_unpartitioned_store_says_what_each_chart_waits_for(tmp_path):
    store = make_store(tmp_path / "store")
    async with console(store).run_test(size=NARROW) as pilot:
        await pilot.press("5")
        await settle(pilot)
        assert "run `apa-console partition`" in text_of(pilot, "#loss-chart .chart-empty")
        assert "run `apa-console partition`" in drawn(pilot, UserShardMap)
        assert text_of(pilot, "#auc-chart .chart-empty").startswith("no scores recorded yet")
        assert drawn(pilot, ForgetCostChart).startswith("no forgets yet")
        assert drawn(pilot, ValidErrorChart).startswith("no validation errors yet")


# -- snapshots ----------------------------------------------------------------------------


def on_chart(chart: str):
    async def run_before(pilot) -> None:
        pilot.app.sub_title = SHOWN_STORE_PATH
        await pilot.press("5")
        await settle(pilot)
        pilot.app.screen.show_chart(chart, shard=1 if chart == "loss" else None)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
@pytest.mark.parametrize("chart", [chart for chart, _, _ in CHARTS])
def test_chart_snapshot(snap_compare, chart_store, chart, size):
    assert snap_compare(console(chart_store), terminal_size=size, run_before=on_chart(chart))


def test_empty_auc_chart_snapshot(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW, run_before=on_chart("auc"))
