"""tools/list at scale: each principal's view kept until it may change, tools shaped once."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.shared.memory import MessageStream, create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcp_guard.config.settings import GatewaySettings, ServerSettings
from mcp_guard.pipeline.access import PolicyAccess
from mcp_guard.policy import ToolInfo
from mcp_guard.principal import Principal
from mcp_guard.server import build_server
from mcp_guard.tool_wire import SplicedToolPages, WireForms
from mcp_guard.upstreams.catalog import Route, build_catalog
from mcp_guard.upstreams.supervisor import Listing
from mcp_guard.visibility import TOOLS_PER_TURN, Exposed, VisibilityCache
from tests.harness import behaviour_upstream, gateway_client
from tests.policy.helpers import load, who
from tests.stdio_peer import ENVELOPE

VERSION_KEY = "io.modelcontextprotocol/protocolVersion"

pytestmark = pytest.mark.anyio

ADMIN = Principal(user="ada", roles=frozenset({"admin"}))
ANALYST = Principal(user="ann", roles=frozenset({"analyst"}))


def exposed(*names: str) -> Exposed:
    return {
        name: (
            Route(name.split("__")[0], name.split("__")[1]),
            types.Tool(name=name, input_schema={}),
            ToolInfo(name),
        )
        for name in names
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_kept_view_is_worked_out_again_only_when_the_catalogue_or_policy_is_replaced(
    tmp_path: Path,
) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - id: db-for-admins
            match: {tools: ["db__*"]}
            when: {principal.roles: {not_contains: admin}}
            decision: HIDE
        """,
    )
    policy, cache, tools = PolicyAccess(policies), VisibilityCache(), exposed("db__drop", "mail__send")
    assert [t.name for t in cache.of(ANALYST, tools, (), policy).tools] == ["mail__send"]
    assert [t.name for t in cache.of(ADMIN, tools, (), policy).tools] == ["db__drop", "mail__send"]
    same_analyst = Principal(user="ann", roles=frozenset({"analyst"}))
    assert [t.name for t in cache.of(same_analyst, tools, (), policy).tools] == ["mail__send"]
    assert cache.computed == 2  # one per principal
    cache.of(ANALYST, exposed("db__drop", "mail__send"), (), policy)  # a rebuilt catalogue
    cache.of(ANALYST, tools, (), PolicyAccess(policies))  # a reloaded policy
    assert cache.computed == 4


def test_views_are_kept_for_the_most_recently_listing_principals_only(tmp_path: Path) -> None:
    policy, cache, tools = PolicyAccess(load(tmp_path, "rules: []\n")), VisibilityCache(2), exposed("db__q")
    for principal in (ADMIN, ANALYST, ADMIN, who("third"), ADMIN, ANALYST):
        cache.of(principal, tools, (), policy)
    assert cache.computed == 4  # ANALYST was dropped for the third principal, ADMIN never


def test_a_time_window_hide_rule_hides_the_tool_from_the_minute_the_window_starts(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        """
        rules:
          - id: no-mail-at-night
            match: {upstreams: [mail]}
            when: {time: {outside: "08:00-20:00", tz: Europe/Paris}}
            decision: HIDE
        """,
    )
    clock = Clock(datetime(2026, 1, 5, 18, 59, 0, tzinfo=UTC))  # 19:59 in Paris
    policy, cache, tools = (
        PolicyAccess(policies, clock),
        VisibilityCache(),
        exposed("db__query", "mail__send"),
    )
    assert cache.of(ANALYST, tools, (), policy).names == {"db__query", "mail__send"}
    clock.now += timedelta(seconds=59.9)
    assert cache.of(ANALYST, tools, (), policy).names == {"db__query", "mail__send"}
    assert cache.computed == 1  # the same minute: the same answer
    clock.now += timedelta(seconds=0.1)  # 20:00 in Paris
    assert cache.of(ANALYST, tools, (), policy).names == {"db__query"}


def test_only_a_live_hide_rule_with_a_time_condition_makes_visibility_read_the_clock(tmp_path: Path) -> None:
    def reads_clock(rule: str) -> bool:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        return load(folder, f"rules:\n  - {rule}\n").visibility_reads_clock

    night = '{time: {outside: "08:00-20:00"}}'
    assert reads_clock(f"{{id: r, when: {{not: {night}}}, decision: HIDE}}")
    assert reads_clock(f"{{id: r, when: {{any: [{night}, {{principal.user: bob}}]}}, decision: HIDE}}")
    assert not reads_clock(f"{{id: r, when: {night}, decision: HIDE, shadow: true}}")
    assert not reads_clock(f"{{id: r, when: {night}, decision: BLOCK}}")
    assert not reads_clock("{id: r, when: {principal.user: bob}, decision: HIDE}")


async def test_a_view_worked_out_while_the_catalogue_is_replaced_is_not_kept_for_the_new_one(
    tmp_path: Path,
) -> None:
    policy, cache = PolicyAccess(load(tmp_path, "rules: []\n")), VisibilityCache()
    old = exposed(*(f"db__t{i}" for i in range(3 * TOOLS_PER_TURN)))
    new = exposed("db__only")
    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.worked_out, ANALYST, old, (), policy)
        await anyio.lowlevel.checkpoint()  # it asks about a first turn's tools, then lets others run
        assert cache.of(ANALYST, new, (), policy).names == {"db__only"}  # an upstream changed meanwhile
    assert cache.of(ANALYST, new, (), policy).names == {"db__only"}
    assert cache.computed == 2


def test_a_rebuilt_catalogue_keeps_the_definition_of_every_tool_its_upstream_listed_unchanged() -> None:
    echo, fail = types.Tool(name="echo", input_schema={}), types.Tool(name="fail", input_schema={})
    before = build_catalog({"beh": Listing(tools=(echo, fail))}, {"beh": "beh"})
    relisted_fail = fail.model_copy()  # equal, but listed anew
    after = build_catalog({"beh": Listing(tools=(echo, relisted_fail))}, {"beh": "beh"}, before)
    assert after.tools["beh__echo"][1] is before.tools["beh__echo"][1]
    assert after.tools["beh__fail"][1] is not before.tools["beh__fail"][1]
    assert after.tools["beh__fail"][1].name == "beh__fail"


def test_a_tool_is_shaped_once_per_protocol_version_until_it_leaves_the_catalogue() -> None:
    forms = WireForms()
    echo = types.Tool(name="beh__echo", input_schema={"type": "object"}, description="Echo.")
    fail = types.Tool(name="beh__fail", input_schema={"type": "object"})
    assert forms.of([echo, fail], "2025-11-25") == [
        {"name": "beh__echo", "description": "Echo.", "inputSchema": {"type": "object"}},
        {"name": "beh__fail", "inputSchema": {"type": "object"}},
    ]
    again = forms.of([fail, echo], "2025-11-25")
    assert forms.shaped == 2
    assert again[1]["inputSchema"] is echo.input_schema  # equal, so not kept twice
    forms.of([echo], "2026-07-28")
    assert forms.shaped == 3
    forms.retain([fail])  # echo left the catalogue
    forms.of([echo, fail], "2025-11-25")
    assert forms.shaped == 4


async def test_a_listing_never_shows_a_tool_after_a_reload_hid_it(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text("rules: []\n", encoding="utf-8")
    async with gateway_client(behaviour_upstream(tmp_path), policy_dir=policies, principal=ANALYST) as (
        gateway,
        client,
    ):
        assert "beh__echo" in {t.name for t in (await client.list_tools()).tools}
        (policies / "p.yaml").write_text(
            'rules:\n  - {id: admins-echo, match: {tools: ["beh__echo"]}, '
            "when: {principal.roles: {not_contains: admin}}, decision: HIDE}\n",
            encoding="utf-8",
        )
        assert await gateway.reload_policies("test") is None
        assert "beh__echo" not in {t.name for t in (await client.list_tools()).tools}
        assert "beh__echo" in gateway.visible_tool_names(ADMIN)
        assert "beh__echo" not in gateway.visible_tool_names(ANALYST)


class RawClient:
    """JSON-RPC in and out, as the wire carries it (nothing validated on the way back)."""

    def __init__(self, streams: MessageStream) -> None:
        self.read, self.write = streams
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        message = JSONRPCRequest(jsonrpc="2.0", id=self.next_id, method=method, params=params)
        await self.write.send(SessionMessage(message))
        with anyio.fail_after(10):
            answer = await self.read.receive()
        assert isinstance(answer, SessionMessage) and isinstance(answer.message, JSONRPCResponse)
        return dict(answer.message.result)

    async def pages(self, version: str) -> list[dict[str, Any]]:
        """Every page of ``tools/list`` in protocol ``version``'s era (a handshake, or the
        2026-07-28 per-request envelope)."""
        envelope: dict[str, Any] = {}
        if version == ENVELOPE[VERSION_KEY]:
            envelope = {"_meta": ENVELOPE}
        else:
            info = {"name": "t", "version": "1"}
            await self.request(
                "initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": info}
            )
            initialized = JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
            await self.write.send(SessionMessage(initialized))
        pages = [await self.request("tools/list", envelope)]
        while cursor := pages[-1].get("nextCursor"):
            pages.append(await self.request("tools/list", {**envelope, "cursor": cursor}))
        return pages


async def test_tools_list_pages_are_exactly_what_the_sdk_would_send_for_each_protocol_version(
    tmp_path: Path,
) -> None:
    settings = GatewaySettings(server=ServerSettings(list_page_size=3))
    async with (
        gateway_client(behaviour_upstream(tmp_path), settings) as (gateway, _),
        AsyncExitStack() as stack,
        anyio.create_task_group() as tg,
    ):

        async def pages(version: str, *, spliced: bool) -> list[dict[str, Any]]:
            server = build_server(gateway, lambda ctx: who())
            if not spliced:
                server.middleware = [m for m in server.middleware if not isinstance(m, SplicedToolPages)]
            client, (read, write) = await stack.enter_async_context(create_client_server_memory_streams())
            tg.start_soon(server.run, read, write, server.create_initialization_options())
            return await RawClient(client).pages(version)

        for version in ("2025-11-25", "2026-07-28"):
            by_the_sdk = await pages(version, spliced=False)
            assert len(by_the_sdk) > 1 and by_the_sdk[0]["tools"]
            assert ("resultType" in by_the_sdk[0]) == (version == "2026-07-28")  # the version's own shape
            assert await pages(version, spliced=True) == by_the_sdk
            assert await pages(version, spliced=True) == by_the_sdk  # from shapes kept
        tg.cancel_scope.cancel()
