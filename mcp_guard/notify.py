"""List-changed fan-out to connected clients, in both protocol eras.

Handshake-era clients (up to 2025-11-25) get ``notifications/tools/list_changed`` on
their standalone channel; 2026-07-28 clients get it through ``subscriptions/listen``
(the SDK's subscription bus). A client is told only when what *its principal* may see
changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    ToolsListChanged,
)

from mcp_guard.principal import Principal

logger = logging.getLogger(__name__)


@dataclass
class _Client:
    session: ServerSession
    principal: Principal
    visible: frozenset[str]


@dataclass
class ListChangedNotifier:
    """Remembers each connected handshake-era client and what it was shown.

    ``visible_tools`` works out what a principal sees now, letting other tasks run while
    it does.
    """

    visible_tools: Callable[[Principal], Awaitable[frozenset[str]]]
    bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)
    _clients: dict[int, _Client] = field(default_factory=dict)

    def register(
        self, connection: Any, session: ServerSession, principal: Principal, visible: frozenset[str]
    ) -> None:
        """Track a connection until it closes (``connection`` is the SDK's per-client Connection);
        ``visible`` is what its principal sees now."""
        key = id(connection)
        self._clients[key] = _Client(session, principal, visible)
        connection.exit_stack.callback(self._clients.pop, key, None)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def tools_changed(self) -> None:
        """Tell every client whose visible tool set changed (and every listen subscriber).

        Working out a principal's view can take tens of milliseconds with thousands of
        tools: other requests get the event loop between one client and the next, and
        while a view is worked out.
        """
        for key, client in list(self._clients.items()):
            await anyio.lowlevel.checkpoint()
            now = await self.visible_tools(client.principal)
            if now == client.visible:
                continue
            client.visible = now
            await self._send(key, client, "tools")
        await self.bus.publish(ToolsListChanged())

    async def catalog_changed(self) -> None:
        """Resources and prompts changed too (they are not filtered per principal)."""
        for key, client in list(self._clients.items()):
            await self._send(key, client, "resources")
            await self._send(key, client, "prompts")
        await self.bus.publish(ResourcesListChanged())
        await self.bus.publish(PromptsListChanged())

    async def _send(self, key: int, client: _Client, kind: str) -> None:
        send = {
            "tools": client.session.send_tool_list_changed,
            "resources": client.session.send_resource_list_changed,
            "prompts": client.session.send_prompt_list_changed,
        }[kind]
        try:
            await send()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            logger.debug("dropping client %s: %s", key, exc)
            self._clients.pop(key, None)
