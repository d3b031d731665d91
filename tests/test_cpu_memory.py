"""The package asks torch for huge pages before torch can read the setting, and only by
default: an operator's own THP_MEM_ALLOC_ENABLE wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from apa_console.cpu_memory import HUGE_PAGES_ENV

PROBE = f"""
import json, os, sys
import apa_console
print(json.dumps({{"value": os.environ.get({HUGE_PAGES_ENV!r}),
                  "torch_loaded": "torch" in sys.modules}}))
"""


def _probe(env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_requests_huge_pages_before_torch_loads():
    env = {key: value for key, value in os.environ.items() if key != HUGE_PAGES_ENV}
    report = _probe(env)
    assert report == {"value": "1", "torch_loaded": False}


def test_an_operator_setting_is_kept():
    report = _probe({**os.environ, HUGE_PAGES_ENV: "0"})
    assert report["value"] == "0"
