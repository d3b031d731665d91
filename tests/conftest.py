"""Shared fixtures: the tiny model every unit test of the engine builds on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_model import build_tiny_model  # tests/ is on sys.path (rootless test dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded Llama model + tokenizer in a HF directory, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
