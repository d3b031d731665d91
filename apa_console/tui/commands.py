"""Command palette (ctrl+p) entries that act on one user or one request: open, score or
forget a user; open or withdraw a request. Lists are read once per palette opening."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from apa_console.workflows import views


def _hits(provider: Provider, query: str,
          entries: list[tuple[str, Callable[[], Any], str]]) -> Hits:
    matcher = provider.matcher(query)
    for command, action, help_text in entries:
        score = matcher.match(command)
        if score > 0:
            yield Hit(score, matcher.highlight(command), action, help=help_text)


class UserCommands(Provider):
    """`user 42` opens that user, `score user 42` scores them, `forget user 42` shows the
    forget plan (which still asks for the typed id)."""

    async def startup(self) -> None:
        self._users = await asyncio.to_thread(views.user_rows, self.app.store)

    def _entries(self) -> list[tuple[str, Callable[[], Any], str]]:
        entries = []
        for user in self._users:
            uid, samples = user["id"], user["samples"]
            entries.append((f"user {uid}", partial(self.app.open_user, uid),
                            f"open user {uid} ({samples} samples)"))
            entries.append((f"score user {uid}", partial(self.app.score, user=uid),
                            f"APA P(Yes) of {uid}'s samples"))
            if not self.app.readonly:
                entries.append((f"forget user {uid}", partial(self.app.forget, uid),
                                f"plan the forget of {uid}, then confirm by typing the id"))
        return entries

    async def discover(self) -> Hits:
        for user in self._users[:10]:
            yield DiscoveryHit(f"user {user['id']}", partial(self.app.open_user, user["id"]),
                               help=f"{user['samples']} samples")

    async def search(self, query: str) -> Hits:
        for hit in _hits(self, query, self._entries()):
            yield hit


class RequestCommands(Provider):
    """`request r0004` opens its receipt; `verify request r0004` retrains and checks a done
    one; `withdraw request r0004` withdraws a queued one."""

    async def startup(self) -> None:
        self._requests = await asyncio.to_thread(views.requests_view, self.app.store)

    async def search(self, query: str) -> Hits:
        entries = []
        for request in self._requests:
            rid = request["id"]
            entries.append((f"request {rid}", partial(self.app.open_request, rid),
                            f"{request['status']}: state, receipt and audit entries"))
            if request["status"] == "done":
                entries.append((f"verify request {rid}",
                                partial(self.app.verify_request, rid),
                                "retrain its shards, check them bit for bit, scan for traces"))
            if (not self.app.readonly and request["open"]
                    and request.get("phase") != "purged"):
                entries.append((f"withdraw request {rid}",
                                partial(self.app.withdraw_request, rid),
                                "withdraw it before it removes anything (asks first)"))
        for hit in _hits(self, query, entries):
            yield hit
