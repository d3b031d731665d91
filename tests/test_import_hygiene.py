"""The core (every apa_console module outside apa_console.tui, the CLI included) must work
without Textual: import all of it in a fresh interpreter and check Textual never loaded."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import importlib, json, pkgutil, sys
import apa_console

# the Ray dispatcher is the one module that imports Ray: only `--workers` loads it
names = sorted(
    info.name for info in pkgutil.walk_packages(apa_console.__path__, "apa_console.")
    if not (info.name == "apa_console.tui" or info.name.startswith("apa_console.tui."))
    and info.name != "apa_console.engine.ray_dispatch"
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names,
                  "textual": sorted(m for m in sys.modules if m.split(".")[0] == "textual"),
                  "ray": "ray" in sys.modules}))
"""


def test_core_modules_import_without_textual():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # the walk found the core and the CLI, including the command that starts the TUI
    assert {"apa_console.store.document", "apa_console.unlearning.forget",
            "apa_console.workflows.views",
            "apa_console.cli.app", "apa_console.cli.tui_cmd"} <= set(report["modules"])
    assert report["textual"] == []
    assert report["ray"] is False


def test_the_tui_package_does_import_textual():
    """The probe above would pass vacuously if the TUI never used Textual at all."""
    probe = "import sys, apa_console.tui.app; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip() == "True", result.stderr


HEAVY = ("torch", "transformers", "peft", "sklearn", "scipy", "textual", "numpy", "ray")
START_PROBE = r"""
import json, sys
from typer.testing import CliRunner
from apa_console.cli.app import app
store = sys.argv[1]
codes = {}
for args in (["--help"], ["init", "--store", store], ["status", "--store", store],
             ["users", "--store", store], ["audit", "--store", store],
             ["requests", "--store", store], ["statuss"]):
    codes[" ".join(args[:1])] = CliRunner().invoke(app, args).exit_code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_the_cli_starts_without_heavy_libraries(tmp_path):
    """`--help`, a typo and the light commands (status, users, audit, requests) run in a fresh
    interpreter without importing torch, transformers, peft, scikit-learn, numpy, Textual or
    Ray:
    those take seconds to load, and are imported only by the commands that use them (the
    start times themselves are measured by `python -m benchmarks.cli_start`)."""
    result = subprocess.run(
        [sys.executable, "-c", START_PROBE, str(tmp_path / "store"), ",".join(HEAVY)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codes"] == {"--help": 0, "init": 0, "status": 0, "users": 0, "audit": 0,
                               "requests": 0, "statuss": 2}
    assert report["heavy"] == []


TUI_PAINT_PROBE = r"""
import asyncio, sys
from typer.testing import CliRunner
from apa_console.cli.app import app
from apa_console.store.document import Store
from apa_console.tui.app import ApaConsoleApp
assert CliRunner().invoke(app, ["init", "--store", sys.argv[1]]).exit_code == 0
assert CliRunner().invoke(app, ["ingest", "demo", "--store", sys.argv[1]]).exit_code == 0

async def paint():
    console = ApaConsoleApp(Store.open(sys.argv[1]), device="cpu")
    async with console.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await console.workers.wait_for_complete()
        await pilot.pause()
        return "Overview" in str(console.screen.title or console.title)

print(asyncio.run(paint()), "torch" in sys.modules)
"""


def test_the_tui_paints_without_loading_torch(tmp_path):
    """Torch takes seconds to import; the console loads it with its first model job, so the
    overview of a store paints without it."""
    result = subprocess.run([sys.executable, "-c", TUI_PAINT_PROBE, str(tmp_path / "store")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["True", "False"], result.stdout
