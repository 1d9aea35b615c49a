"""``tools/list`` pages on the wire: each tool shaped once, pages spliced into the SDK's answer.

The SDK shapes every result for the connection's protocol version: it dumps the
handler's models, validates the dump against that version's schema and dumps it again.
For a tool that is 80 to 90 µs, so 80 to 90 ms of the event loop for a page of 1,000 tools,
for every page of every listing. Here each tool of the catalogue goes through the same SDK
functions once per protocol version (:class:`WireForms`: until the tool changes or
leaves the catalogue), and a page is assembled from those shapes:

- the ``tools/list`` handler gives the page to :func:`tool_page`, which hands the shaped
  tools to :class:`SplicedToolPages` and returns the page without its tools;
- the SDK shapes that envelope (cursor, ``_meta``, the fields of the protocol version);
- :class:`SplicedToolPages`, the innermost middleware, puts the shaped tools in it.

The result is what the SDK would have sent. Shaped tools are shared by every page and
every principal that shows them: nothing may change them.

The gateway shapes the tools a page needs in a worker thread (:meth:`WireForms.of_in_worker`):
a first listing shapes every tool of the catalogue, 40 to 80 ms of the event loop a page
of 1,000 tools otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import types
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result
from pydantic import ValidationError

logger = logging.getLogger(__name__)

TOOLS_LIST = "tools/list"
WireTool = dict[str, Any]
SHAPED_PER_CALL = 100
"""Tools the SDK shapes in one call: a call holds the interpreter lock throughout, which a
worker thread shaping beside the event loop must give back often (100 tools: 3 to 5 ms)."""


class WireForms:
    """The wire shape of each tool, per protocol version, built when first asked.

    Tools are known by identity, the definition object itself, which is never changed
    (the catalogue makes a new one for a changed tool). Each form holds its tool, so no
    other object can take its ``id`` while the form is kept; :meth:`retain` drops the
    forms of tools that left the catalogue. Not thread-safe: use it from one event loop.
    """

    def __init__(self) -> None:
        self._forms: dict[tuple[int, str], tuple[types.Tool, WireTool]] = {}
        self.shaped = 0
        """Tools shaped by the SDK so far (not found already shaped)."""

    def of(self, tools: Sequence[types.Tool], version: str) -> list[WireTool]:
        """``tools`` shaped for protocol ``version``, in order.

        Raises:
            MCPError: a tool does not fit ``version``'s schema (as the SDK itself would).
        """
        missing = self._missing(tools, version)
        if missing:
            self._keep(missing, version, shaped_forms(missing, version))
        return [self._forms[(id(tool), version)][1] for tool in tools]

    async def of_in_worker(self, tools: Sequence[types.Tool], version: str) -> list[WireTool]:
        """:meth:`of`, the tools not shaped yet shaped in a worker thread.

        Raises:
            MCPError: a tool does not fit ``version``'s schema (as the SDK itself would).
        """
        missing = self._missing(tools, version)
        if missing:
            self._keep(missing, version, await anyio.to_thread.run_sync(shaped_forms, missing, version))
        return self.of(tools, version)  # any dropped meanwhile (:meth:`retain`) is shaped here

    def _missing(self, tools: Sequence[types.Tool], version: str) -> list[types.Tool]:
        return [tool for tool in tools if (id(tool), version) not in self._forms]

    def _keep(self, tools: Sequence[types.Tool], version: str, forms: Sequence[WireTool]) -> None:
        for tool, form in zip(tools, forms, strict=True):
            self._forms[(id(tool), version)] = (tool, form)
        self.shaped += len(tools)

    def retain(self, tools: Iterable[types.Tool]) -> None:
        """Keep the forms of ``tools`` (the catalogue now) and drop every other."""
        live = {id(tool) for tool in tools}
        self._forms = {key: entry for key, entry in self._forms.items() if key[0] in live}


def shaped_forms(tools: Sequence[types.Tool], version: str) -> list[WireTool]:
    """``tools`` shaped for protocol ``version`` (:func:`shape`), holding their own schemas
    (:func:`sharing_schemas`), :data:`SHAPED_PER_CALL` at a time.

    Raises:
        MCPError: a tool does not fit ``version``'s schema.
    """
    forms: list[WireTool] = []
    for start in range(0, len(tools), SHAPED_PER_CALL):
        batch = tools[start : start + SHAPED_PER_CALL]
        forms += [sharing_schemas(t, form) for t, form in zip(batch, shape(batch, version), strict=True)]
    return forms


def shape(tools: Sequence[types.Tool], version: str) -> list[WireTool]:
    """``tools`` as the SDK puts them on the wire for protocol ``version`` (one pass for all).

    Raises:
        MCPError: a tool does not fit ``version``'s schema.
    """
    result = types.ListToolsResult(tools=list(tools))
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    try:
        wire = serialize_server_result(TOOLS_LIST, version, dumped)
    except ValidationError:
        logger.exception("tools do not fit the schema of protocol version %s", version)
        raise MCPError(code=types.INTERNAL_ERROR, message="Handler returned an invalid result") from None
    shaped: list[WireTool] = wire["tools"]
    return shaped


def sharing_schemas(tool: types.Tool, form: WireTool) -> WireTool:
    """``form`` holding ``tool``'s own schema objects where they are equal to its copies.

    Schemas are most of a tool's objects; kept twice, every full garbage collection of
    the process walks them twice (at 10,000 tools, ~50,000 objects more).
    """
    for key, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema)):
        if schema is not None and form.get(key) == schema:
            form[key] = schema
    return form


@dataclass
class _Slot:
    tools: list[WireTool] | None = None


_SLOT: ContextVar[_Slot | None] = ContextVar("mcp_guard_tool_page", default=None)


async def tool_page(
    tools: Sequence[types.Tool], cursor: str | None, shaped: Callable[[], Awaitable[list[WireTool]]]
) -> types.ListToolsResult:
    """The ``tools/list`` result of a page of ``tools`` with ``cursor``.

    Under :class:`SplicedToolPages` the tools as ``shaped`` go to the middleware and the
    result carries none; elsewhere it carries the tools for the SDK to shape.
    """
    slot = _SLOT.get()
    if slot is None:
        return types.ListToolsResult(tools=list(tools), next_cursor=cursor)
    slot.tools = await shaped()
    return types.ListToolsResult(tools=[], next_cursor=cursor)


class SplicedToolPages(ServerMiddleware[Any]):
    """Puts the shaped tools of a :func:`tool_page` into the SDK's answer to ``tools/list``.

    Must be the innermost middleware, so that every other one sees the answer whole.
    """

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != TOOLS_LIST:
            return await call_next(ctx)
        slot = _Slot()
        token = _SLOT.set(slot)
        try:
            answer = await call_next(ctx)
        finally:
            _SLOT.reset(token)
        if slot.tools is None:
            return answer
        if not isinstance(answer, dict) or answer.get("tools") != []:
            raise MCPError(code=types.INTERNAL_ERROR, message="tools/list answer of an unexpected shape")
        return {**answer, "tools": slot.tools}
