"""The core (every apa_console module outside apa_console.tui, the CLI included) must work
without Textual: import all of it in a fresh interpreter and check Textual never loaded."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import importlib, json, pkgutil, sys
import apa_console

names = sorted(
    info.name for info in pkgutil.walk_packages(apa_console.__path__, "apa_console.")
    if not (info.name == "apa_console.tui" or info.name.startswith("apa_console.tui."))
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names,
                  "textual": sorted(m for m in sys.modules if m.split(".")[0] == "textual")}))
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


def test_the_tui_package_does_import_textual():
    """The probe above would pass vacuously if the TUI never used Textual at all."""
    probe = "import sys, apa_console.tui.app; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip() == "True", result.stderr
