"""scripts/demo.sh writes only a store it made itself: a store named by $APA_STORE (the
README tells operators to set it) survives the demo byte for byte, and a folder that is not a
previous demo store is refused, not deleted. Run end to end on the tiny model."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from data_fixtures import cli, new_store

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.sh"
MARKER = ".apa-demo-store"


def _tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` with its content hash (folders and links named too)."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = "link:" + os.readlink(path)
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[relative] = "dir"
    return found


def _run_demo(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(["bash", str(DEMO)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture
def real_store(tmp_path: Path) -> Path:
    store = new_store(tmp_path / "real-store")
    assert cli("ingest", "demo", "--users", "6", "--store", store).exit_code == 0
    return store


@pytest.mark.slow
def test_the_demo_leaves_the_store_APA_STORE_names_untouched(real_store, tmp_path,
                                                             tiny_model_dir):
    before = _tree_digest(real_store)
    demo_store = tmp_path / "demo"
    result = _run_demo({"APA_STORE": str(real_store), "APA_DEMO_STORE": str(demo_store),
                        "APA_DEMO_MODEL": str(tiny_model_dir)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert _tree_digest(real_store) == before
    assert (demo_store / "apa.json").is_file() and (demo_store / MARKER).is_file()
    assert f"--store {demo_store}" in result.stdout  # what it tells the operator to browse


@pytest.mark.parametrize("kind", ["store", "other files", "file", "link"])
def test_the_demo_refuses_a_path_that_is_not_its_own_store(kind, real_store, tmp_path):
    if kind == "store":
        target = real_store
    elif kind == "other files":
        target = tmp_path / "notes"
        target.mkdir()
        (target / "keep.txt").write_text("operator data\n")
    elif kind == "file":
        target = tmp_path / "a-file"
        target.write_text("operator data\n")
    else:
        target = tmp_path / "link"
        target.symlink_to(real_store, target_is_directory=True)
    watched = real_store if kind in ("store", "link") else tmp_path
    before = _tree_digest(watched)
    result = _run_demo({"APA_DEMO_STORE": str(target)})
    assert result.returncode == 7, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and "nothing was changed" in lines[0]
    assert _tree_digest(watched) == before
