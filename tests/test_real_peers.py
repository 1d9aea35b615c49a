"""Upstreams nobody here wrote: mcp-server-time (PyPI) and server-everything (npm)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import types

from tests.harness import gateway_client, write_upstreams

pytestmark = pytest.mark.anyio


def everything_command() -> str | None:
    """The server-everything binary: $MCP_GUARD_EVERYTHING_BIN (set by .ci/run), else none."""
    configured = os.environ.get("MCP_GUARD_EVERYTHING_BIN")
    if configured and Path(configured).exists():
        return configured
    return shutil.which("mcp-server-everything")


async def test_mcp_server_time_from_pypi_works_through_the_gateway(tmp_path: Path) -> None:
    upstreams = write_upstreams(
        tmp_path,
        f"""
mcpServers:
  time:
    command: "{sys.executable}"
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
""",
    )
    async with gateway_client(upstreams) as (_, client):
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool(
            "time__convert_time",
            {"source_timezone": "Europe/Berlin", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
    assert {"time__get_current_time", "time__convert_time"} <= names
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert "Asia/Tokyo" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.skipif(
    everything_command() is None,
    reason="@modelcontextprotocol/server-everything is not installed (needs Node; .ci/run installs "
    "it and sets MCP_GUARD_EVERYTHING_BIN)",
)
async def test_server_everything_from_npm_works_through_the_gateway(tmp_path: Path) -> None:
    command = everything_command()
    upstreams = write_upstreams(
        tmp_path,
        f"""
upstreams:
  ev:
    command: "{command}"
    args: ["stdio"]
    connect_timeout_s: 60
""",
    )
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with gateway_client(upstreams) as (_, client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        echo = await client.call_tool("ev__echo", {"message": "hello"})
        assert isinstance(echo, types.CallToolResult) and "hello" in echo.content[0].text  # type: ignore[union-attr]
        long_running = next(n for n in tools if "long" in n.lower())
        result = await client.call_tool(
            long_running, {"duration": 1, "steps": 3}, progress_callback=on_progress
        )
        resources = (await client.list_resources()).resources
        prompts = (await client.list_prompts()).prompts
    assert isinstance(result, types.CallToolResult) and not result.is_error
    assert len(seen) >= 2
    assert resources and prompts
    assert all(p.name.startswith("ev__") for p in prompts)
