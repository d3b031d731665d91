"""The real `apa-console tui` in a real terminal: tmux at 80×24, keys sent with send-keys,
the screen read back with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (apt-get install -y tmux) — the terminal test needs it",
)

COLUMNS, ROWS = 80, 24


class Tmux:
    """One detached session on a private server socket, so an operator's own tmux (or a
    parallel test run) is never touched."""

    def __init__(self, name: str):
        self.socket = f"apa-test-{os.getpid()}-{name}"
        self.session = name

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", str(COLUMNS), "-y", str(ROWS),
                 command)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_for(self, *texts: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


@pytest.fixture
def tmux():
    session = Tmux("tui")
    yield session
    session.stop()


def test_overview_renders_in_an_80x24_terminal_and_q_quits(tmux, display_store):
    tui = shlex.join([sys.executable, "-m", "apa_console.cli.app", "tui",
                      "--store", str(display_store.root)])
    # keep the pane open after exit so the exit status can be read
    tmux.start(f"TERM=xterm-256color {tui}; echo TUI-EXIT=$?; sleep 60")
    screen = tmux.wait_for("Shard balance", "shard-2-v1", "APA(ND)")
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) == ROWS
    assert all(len(line) <= COLUMNS for line in lines)
    assert "Overview" in lines[0]
    for expected in ("Dataset & model", "synthetic (movie)", "apa K=3 cap 12", "1 open (r0002)",
                     "Adapters", "shard-0-v2", "Last evaluation", "0.812", "q Quit"):
        assert expected in screen, expected
    assert "Help" in lines[-1] and "palette" in lines[-1]

    tmux.keys("2")
    tmux.wait_for("user5", "6 of 6 users")
    tmux.keys("q")
    assert "TUI-EXIT=0" in tmux.wait_for("TUI-EXIT=")
