"""Command palette (ctrl+p) entries for opening a user by id."""

from __future__ import annotations

import asyncio
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from apa_console.workflows import views


class UserCommands(Provider):
    """`user 42` → open that user. The list is read once per palette opening."""

    async def startup(self) -> None:
        self._users = await asyncio.to_thread(views.user_rows, self.app.store)

    async def discover(self) -> Hits:
        for user in self._users[:10]:
            yield DiscoveryHit(f"user {user['id']}", partial(self.app.open_user, user["id"]),
                               help=f"{user['samples']} samples")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for user in self._users:
            command = f"user {user['id']}"
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command),
                          partial(self.app.open_user, user["id"]),
                          help=f"open user {user['id']} ({user['samples']} samples)")
