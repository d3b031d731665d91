"""The filesystem saying no is a refusal, never a crash (issue 36, class 1).

Every write path (the store's commits, its lock, `init`, `export`, temp files, collection)
meets a path that exists, a file where a folder belongs, a permission, a full or read-only
disk. Each must give its documented exit code (2 for a path the operator chose, 5 for a
store that cannot be written) in one line, and leave the store as it was.

The tests run as root, where permission bits do not bind: they make the OS refuse by
putting a file where a folder belongs, or by patching the one OS call a write goes through
to raise the error a real refusal raises (EACCES, ENOSPC, EROFS). One test uses real
permission bits and is skipped as root.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from refusal_checks import assert_refused, digest, refusal_line, runner
from store_fixtures import make_store

from apa_console.cli.app import app
from apa_console.cli.common import filesystem_refusal
from apa_console.errors import ExitCode, StoreInvalidError, UsageError
from apa_console.fileio import refusing_os_errors
from apa_console.store.keys import key_dir
from apa_console.store.references import unreferenced

USAGE, STORE = int(ExitCode.USAGE), int(ExitCode.STORE_INVALID)
REFUSALS = {"permission": errno.EACCES, "disk full": errno.ENOSPC,
            "read-only filesystem": errno.EROFS}


def _raise_for(errno_code: int, path) -> OSError:
    return OSError(errno_code, os.strerror(errno_code), str(path))


def refuse_replace_under(monkeypatch, folder: Path, errno_code: int, after: int = 0) -> None:
    """os.replace (how every file reaches its name) refuses under `folder`, after letting
    `after` such writes through."""
    real, allowed = os.replace, [after]

    def replace(src, dst, *args, **kwargs):
        if Path(dst).absolute().is_relative_to(folder.absolute()):
            if allowed[0] <= 0:
                raise _raise_for(errno_code, dst)
            allowed[0] -= 1
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.fixture
def store(tmp_path) -> Path:
    return make_store(tmp_path / "store").root


def _keys() -> set[str]:
    return {path.name for path in key_dir().glob("*.key")}


# -- the store's own writes: exit 5, the store at its last commit ----------------------------


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_commit_leaves_the_store_byte_identical(store, monkeypatch, name):
    """A forget writes new segments, then apa.json: when the commit is refused, the segments
    it wrote first are collected too."""
    refuse_replace_under(monkeypatch, store / "apa.json", REFUSALS[name])
    line = assert_refused(store, ["forget", "--user", "user1", "--yes"], STORE, "apa.json")
    assert os.strerror(REFUSALS[name]).lower() in line and "last commit" in line


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_segment_write_leaves_the_empty_store_empty(tmp_path, monkeypatch, name):
    root = tmp_path / "store"
    assert runner.invoke(app, ["init", "--store", str(root)]).exit_code == 0
    refuse_replace_under(monkeypatch, root / "segments", REFUSALS[name])
    assert_refused(root, ["ingest", "demo"], STORE, "segments")


def test_a_forget_whose_purge_is_refused_keeps_its_request_for_apply(store, monkeypatch):
    """Recording the request is a commit of its own: the purge's refusal leaves it queued,
    and `apply` finishes it once the disk takes writes again. The purge's segments, written
    before its refused commit, are collected at once."""
    with monkeypatch.context() as patched:
        refuse_replace_under(patched, store / "apa.json", errno.ENOSPC, after=1)
        result = runner.invoke(app, ["forget", "--user", "user1", "--yes", "--store",
                                     str(store)])
    assert result.exit_code == STORE
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot write")
    document = json.loads((store / "apa.json").read_text())
    assert unreferenced(store, document) == [] and not list(store.rglob(".*.tmp"))
    assert runner.invoke(app, ["apply", "--store", str(store)]).exit_code == 0
    shown = runner.invoke(app, ["user", "show", "user1", "--store", str(store)])
    assert shown.exit_code == int(ExitCode.NOT_FOUND) and "forgotten in r0001" in shown.stderr


def test_a_lock_file_the_user_cannot_open_is_exit_5(store, monkeypatch):
    real_open = os.open

    def open_(path, *args, **kwargs):
        if str(path).endswith("apa.lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    line = assert_refused(store, ["forget", "--user", "user1", "--yes"], STORE, "lock")
    assert "write access" in line
    # readers take no lock: the same store still answers
    assert runner.invoke(app, ["status", "--store", str(store)]).exit_code == 0


def test_a_folder_where_the_lock_file_belongs_is_exit_5(store):
    (store / "apa.lock").unlink()
    (store / "apa.lock").mkdir()
    assert_refused(store, ["forget", "--user", "user1", "--yes"], STORE, "apa.lock")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_store_folder_refuses_writes_with_exit_5(store):
    (store / "apa.lock").unlink()
    store.chmod(0o555)
    try:
        assert_refused(store, ["forget", "--user", "user1", "--yes"], STORE)
    finally:
        store.chmod(0o755)


# -- collection never follows, empties or deletes a symlink ---------------------------------


def test_collection_leaves_a_symlink_to_an_empty_folder_alone(store, tmp_path):
    outside = tmp_path / "outside-empty"
    outside.mkdir()
    (store / "arrays").mkdir(exist_ok=True)
    (store / "arrays" / "stray").symlink_to(outside)
    result = runner.invoke(app, ["forget", "--user", "user1", "--yes", "--store", str(store)])
    assert result.exit_code == 0, result.stderr
    assert (store / "arrays" / "stray").is_symlink() and outside.is_dir()


def test_collection_deletes_nothing_behind_a_symlinked_folder(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "old-array.npy").write_bytes(b"not the store's")
    (store / "segments" / "linked").symlink_to(outside)
    result = runner.invoke(app, ["forget", "--user", "user1", "--yes", "--store", str(store)])
    assert result.exit_code == 0, result.stderr
    assert (outside / "old-array.npy").read_bytes() == b"not the store's"


# -- init: a place the filesystem refuses is a usage error, and leaves nothing ---------------


def test_init_under_a_file_is_exit_2_and_creates_nothing(tmp_path):
    (tmp_path / "a-file").write_text("x")
    keys = _keys()
    result = runner.invoke(app, ["init", "--store", str(tmp_path / "a-file" / "store")])
    assert "not a directory" in refusal_line(result, USAGE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and _keys() == keys


@pytest.mark.parametrize("name", list(REFUSALS))
def test_init_whose_folder_cannot_be_made_is_exit_2(tmp_path, monkeypatch, name):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(tmp_path / "parent"):
            raise _raise_for(REFUSALS[name], self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    result = runner.invoke(app, ["init", "--store", str(tmp_path / "parent" / "store")])
    assert "pick another --store" in refusal_line(result, USAGE, "cannot create a store")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(REFUSALS))
def test_init_whose_first_commit_is_refused_leaves_no_folder_lock_or_key(tmp_path,
                                                                         monkeypatch, name):
    keys = _keys()
    refuse_replace_under(monkeypatch, tmp_path / "new", REFUSALS[name])
    result = runner.invoke(app, ["init", "--store", str(tmp_path / "new" / "store")])
    refusal_line(result, USAGE, "apa.json")
    assert list(tmp_path.iterdir()) == [] and _keys() == keys


# -- export: the operator's destination ------------------------------------------------------


def test_export_into_a_path_that_is_a_file_is_exit_2(store, tmp_path):
    (tmp_path / "a-file").write_text("keep me")
    assert_refused(store, ["export", "tallrec", str(tmp_path / "a-file")], USAGE, "file exists")
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_export_under_a_file_is_exit_2(store, tmp_path):
    (tmp_path / "a-file").write_text("keep me")
    assert_refused(store, ["export", "tallrec", str(tmp_path / "a-file" / "out")], USAGE,
                   "not a directory")


@pytest.mark.parametrize("name", list(REFUSALS))
def test_an_export_refused_midway_removes_the_files_it_wrote(store, tmp_path, monkeypatch,
                                                              name):
    out = tmp_path / "out"
    out.mkdir()
    refuse_replace_under(monkeypatch, out, REFUSALS[name], after=1)  # train.json gets through
    line = assert_refused(store, ["export", "tallrec", str(out)], USAGE, "cannot export")
    assert "choose another directory" in line and list(out.iterdir()) == []


# -- the CLI's last line of defence, and what the mechanism lets pass ------------------------


def test_a_filesystem_refusal_no_write_path_named_still_exits_with_a_code(store, monkeypatch):
    from apa_console.cli import store_cmds

    def refused(_store):
        raise PermissionError(errno.EACCES, "Permission denied", str(store / "apa.json"))

    monkeypatch.setattr(store_cmds.status_core, "store_status", refused)
    assert_refused(store, ["status"], STORE, "permission denied")


def test_the_backstop_tells_a_stores_file_from_the_operators_path(store, tmp_path):
    inside = filesystem_refusal(_raise_for(errno.ENOSPC, store / "arrays" / "x.npy"))
    outside = filesystem_refusal(_raise_for(errno.EACCES, tmp_path / "elsewhere"))
    too_long = filesystem_refusal(_raise_for(errno.ENAMETOOLONG, tmp_path / ("x" * 5000)))
    assert isinstance(inside, StoreInvalidError) and "no space left" in str(inside)
    assert isinstance(outside, UsageError) and isinstance(too_long, UsageError)
    assert len(str(too_long)) < 200  # the 5000-character name is clipped


def test_errors_that_are_not_the_filesystem_refusing_pass_unchanged():
    with pytest.raises(OSError) as raised, refusing_os_errors("write", UsageError):
        raise OSError(errno.EIO, "Input/output error", "/dev/sda")
    assert raised.type is OSError


def test_a_refusal_under_another_folder_is_left_to_its_own_handler(tmp_path):
    with pytest.raises(PermissionError), refusing_os_errors("write", StoreInvalidError,
                                                            within=tmp_path / "store"):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "key"))


def test_digest_sees_a_stray_file(store):
    """The store-unchanged check above must be able to fail."""
    before = digest(store)
    (store / "segments" / ".left.tmp").write_bytes(b"x")
    assert digest(store) != before
