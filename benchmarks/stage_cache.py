"""Resumable benchmark stages: each finished stage's numbers kept in a JSON file, so a run
interrupted at any point picks up where it stopped; store copies that are never half-made."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from apa_console.store import records
from apa_console.store.document import Store


class Results:
    """results.json in the work directory: the config and each finished stage's numbers,
    rewritten atomically after every stage."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        config = json.loads(json.dumps(config))  # tuples compare as the lists JSON stores
        data = json.loads(path.read_text()) if path.is_file() else {}
        self.data = {"config": config, "stages": data.get("stages", {}) if
                     data.get("config") == config else {}}

    def get(self, key: str):
        return self.data["stages"].get(key)

    def put(self, key: str, value) -> None:
        self.data["stages"][key] = value
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1))
        os.replace(temporary, self.path)


def stage(results: Results, key: str, compute):
    """The stage's cached numbers, or compute them now and keep them."""
    cached = results.get(key)
    if cached is not None:
        print(f"  reused  {key}", flush=True)
        return cached
    started = time.perf_counter()
    value = compute()
    results.put(key, value)
    print(f"  done    {key} ({time.perf_counter() - started:.0f}s)", flush=True)
    return value


def adapters_key(store: Store) -> str:
    """Changes whenever a live adapter's weights change, invalidating that arm's scores."""
    digests = [row["sha256"] for row in records.live_adapters(store.snapshot())]
    return hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:12]


def copy_store(source: Path, target: Path) -> Store:
    """Copy through a temporary name so an interrupted copy is never taken for a store."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    os.replace(partial, target)
    return Store.open(target)
