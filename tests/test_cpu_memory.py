"""The engine asks torch for huge pages before torch can read the setting, and only by
default: an operator's own THP_MEM_ALLOC_ENABLE wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from apa_console.engine import memory as cpu_memory
from apa_console.engine.memory import HUGE_PAGES_ENV

KERNEL_HAS_THP = (cpu_memory._THP_SETTING.is_file()
                  and "[never]" not in cpu_memory._THP_SETTING.read_text())

PROBE = f"""
import json, os, sys
import apa_console.engine
print(json.dumps({{"value": os.environ.get({HUGE_PAGES_ENV!r}),
                  "torch_loaded": "torch" in sys.modules}}))
"""


def _probe(env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not KERNEL_HAS_THP, reason="this kernel has no transparent huge pages")
def test_importing_the_engine_requests_huge_pages_before_torch_loads():
    env = {key: value for key, value in os.environ.items() if key != HUGE_PAGES_ENV}
    report = _probe(env)
    assert report == {"value": "1", "torch_loaded": False}


def test_an_operator_setting_is_kept():
    report = _probe({**os.environ, HUGE_PAGES_ENV: "0"})
    assert report["value"] == "0"


@pytest.mark.parametrize("setting, expected", [
    ("always [madvise] never\n", "1"),
    ("[always] madvise never\n", "1"),
    ("always madvise [never]\n", None),
    (None, None),  # no such file: not Linux, or no THP in the kernel
])
def test_huge_pages_are_requested_only_where_the_kernel_has_them(
    setting, expected, tmp_path, monkeypatch
):
    path = tmp_path / "enabled"
    if setting is not None:
        path.write_text(setting)
    monkeypatch.setattr(cpu_memory, "_THP_SETTING", path)
    monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    cpu_memory.request_huge_pages()
    assert os.environ.get(HUGE_PAGES_ENV) == expected
