"""How a refusal is checked everywhere: the documented exit code, exactly one line on stderr
starting `error: `, no traceback, nothing "unexpected", and every file of the store (folders
and symlinks too) as it was before the command."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from typer.testing import CliRunner

from apa_console.cli.app import app

runner = CliRunner()


def digest(root: Path) -> dict[str, str]:
    """Every path under the store (folders too), and each file's sha256."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = "link:" + str(path.readlink())
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[relative] = "dir"
    return found


def refusal_line(result, code: int, fragment: str = "") -> str:
    """The one stderr line of a refused command, after checking its shape."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "unexpected" not in lines[0], lines[0]
    assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_refused(root: Path, args: list[str], code: int, fragment: str = "") -> str:
    """Run `args` on the store at `root`; it must be refused and leave the store as it was."""
    before = digest(root)
    result = runner.invoke(app, [*args, "--store", str(root)])
    line = refusal_line(result, code, fragment)
    assert digest(root) == before, args
    return line


def copy_of(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(template, target, symlinks=True)
    return target
