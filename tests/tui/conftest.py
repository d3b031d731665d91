"""Stores for the TUI tests: a deterministic display store (no model) for navigation and
screenshots, and a really trained tiny-model store for scoring and forgetting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from display_store import build_display_store
from store_fixtures import make_store

from apa_console.store.document import Store

# Small enough to train in seconds, and seed 2 gives both labels in valid and test
# (so AUC is defined).
TRAINED_STORE_SHAPE = {"n_users": 4, "per_user": 6, "seed": 2}


@pytest.fixture
def display_store(tmp_path: Path) -> Store:
    return build_display_store(tmp_path / "store")


@pytest.fixture(scope="session")
def trained_store_template(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir) -> Path:
    """Partitioned into 3 shards and trained once per session; tests get copies."""
    from apa_console.apa.adapters import train_all
    from apa_console.apa.shards import run_partition
    from apa_console.engine.backbone import Backbone
    from apa_console.store.model_record import record_model

    path = tmp_path_factory.mktemp("tui-trained") / "store"
    store = make_store(path, **TRAINED_STORE_SHAPE)
    backbone = Backbone.load(tiny_model_dir, device="cpu")
    record_model(store, backbone.info)
    run_partition(store, backbone, "apa", 3, seed=0)
    train_all(store, backbone, overrides={"epochs": 1, "batch_size": 4})
    return path


@pytest.fixture
def trained_store(trained_store_template: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "store"
    shutil.copytree(trained_store_template, copy)
    return Store.open(copy)


@pytest.fixture
def anyio_backend() -> str:
    """Async Pilot tests run on asyncio (Textual's loop), through anyio's pytest plugin."""
    return "asyncio"
