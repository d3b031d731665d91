"""The real `apa-console tui` in a real terminal: tmux at 80×24, keys sent with send-keys,
the screen read back with capture-pane. Drives a sort, a request's receipt and a palette
action the way an operator would."""

from __future__ import annotations

import os
import re
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

    def type(self, text: str) -> None:
        """Literal text (no key names), as typed."""
        self.run("send-keys", "-t", self.session, "-l", text)

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


def console_command(store_root) -> str:
    """The TUI in this checkout (PYTHONPATH kept: the pane's shell may not inherit it)."""
    tui = shlex.join([sys.executable, "-m", "apa_console.cli.app", "tui",
                      "--store", str(store_root)])
    path = os.environ.get("PYTHONPATH")
    prefix = f"PYTHONPATH={shlex.quote(path)} " if path else ""
    return f"{prefix}TERM=xterm-256color {tui}"


def line_of(screen: str, text: str) -> int:
    return next(i for i, line in enumerate(screen.splitlines()) if text in line)


def test_sort_then_enter_opens_the_request_and_its_receipt(tmux, display_store):
    tmux.start(console_command(display_store.root))
    tmux.wait_for("Shard balance")
    tmux.keys("4")
    screen = tmux.wait_for("Forget requests", "r0002", "Audit log")
    assert line_of(screen, "r0001") < line_of(screen, "r0002")

    tmux.keys("o")  # sort by the first column, request, ascending
    tmux.wait_for("request ▲", "by request ascending")
    tmux.keys("O")  # reversed: the newest request first
    screen = tmux.wait_for("request ▼", "by request descending")
    assert line_of(screen, "r0002") < line_of(screen, "r0001")
    assert all(len(line) <= COLUMNS for line in screen.splitlines())

    # the cursor stayed on r0001 through the sort: Enter opens it
    tmux.keys("Enter")
    screen = tmux.wait_for("Request r0001", "Receipt", "receipt r0001")
    assert "shard 0: shard-0-v1 (17d460cdc575) → shard-0-v2" in screen
    assert "forget.done" in screen  # its audit entries
    tmux.keys("Escape")
    tmux.wait_for("Forget requests", "request ▼")


def test_palette_scores_a_user_and_shows_the_result(tmux, trained_store):
    tmux.start(console_command(trained_store.root))
    tmux.wait_for("Shard balance")
    tmux.keys("C-p")
    tmux.wait_for("Search for commands")
    tmux.type("score user user1")
    tmux.wait_for("score user user1", "APA P(Yes) of user1's samples")
    tmux.keys("Enter")
    # scoring loads the tiny model in the console, then shows the report
    screen = tmux.wait_for("Score user user1", "P(Yes) per sample", "Adapter weights ·",
                           timeout=120)
    assert "on user user1's test split" in screen
    # a user has a test sample or two: the AUC is flagged (or absent, with one label)
    assert re.search(r"⚠ (AUC \S+ over only |no AUC: )\d+ test sample", screen), screen
    assert re.search(r"w0\s+w1\s+w2", screen), screen  # a weight column per shard
    assert all(len(line) <= COLUMNS for line in screen.splitlines())
