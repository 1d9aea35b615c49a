"""The ``mcp-guard`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
from pydantic import ValidationError

from mcp_guard import __version__
from mcp_guard.approvals import commands as approvals_commands
from mcp_guard.audit import commands as audit_commands
from mcp_guard.config.settings import GatewaySettings, ServerSettings, load_settings
from mcp_guard.errors import ConfigError
from mcp_guard.gateway import Gateway
from mcp_guard.identity import AuthError, StdioIdentity
from mcp_guard.identity import commands as token_commands
from mcp_guard.pinning import commands as tools_commands
from mcp_guard.policy import commands as policy_commands
from mcp_guard.upstreams.config import load_upstreams

logger = logging.getLogger("mcp_guard")
DEFAULT_SETTINGS = "mcp-guard.yaml"
DEFAULT_POLICIES = "policies"
SERVER_FLAGS = {"host": "--host", "port": "--port"}
"""The ``serve`` flags that override a ``server`` setting of ``mcp-guard.yaml``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-guard", description="An MCP gateway that governs agents' tool use."
    )
    parser.add_argument("--version", action="version", version=f"mcp-guard {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--upstreams", default="upstreams.yaml", help="upstream servers (YAML or Claude Desktop JSON)"
    )
    serve.add_argument(
        "--policies", default=None, help=f"policy folder (default: ./{DEFAULT_POLICIES} when it exists)"
    )
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=None, help="HTTP listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default 8765)")
    serve.add_argument(
        "--config", default=None, help=f"gateway settings file (default: ./{DEFAULT_SETTINGS} when it exists)"
    )
    serve.set_defaults(func=_serve)
    token_commands.register(commands)
    policy_commands.register(commands)
    audit_commands.register(commands)
    approvals_commands.register(commands)
    tools_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print("mcp-guard: configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except AuthError as exc:
        print(f"mcp-guard: {exc.description}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _settings(args: argparse.Namespace) -> GatewaySettings:
    """The gateway settings, with the ``serve`` flags applied.

    Raises:
        ConfigError: the settings file, or a flag's value, is invalid.
    """
    path = args.config or (DEFAULT_SETTINGS if Path(DEFAULT_SETTINGS).is_file() else None)
    settings = load_settings(path)
    overrides = {key: getattr(args, key) for key in SERVER_FLAGS if getattr(args, key) is not None}
    return settings.model_copy(update={"server": with_server_flags(settings.server, overrides)})


def with_server_flags(server: ServerSettings, overrides: dict[str, object]) -> ServerSettings:
    """``server`` with ``overrides`` (from :data:`SERVER_FLAGS`), validated as the same
    values in ``mcp-guard.yaml`` are.

    Raises:
        ConfigError: one ``--flag VALUE: message`` per invalid flag.
    """
    try:
        return ServerSettings.model_validate({**server.model_dump(), **overrides})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0])  # only an override can be invalid: the rest was validated
            problems.append(f"{SERVER_FLAGS[key]} {overrides[key]!r}: {error['msg']}")
        raise ConfigError(problems) from None


def _serve(args: argparse.Namespace) -> int:
    from mcp_guard.assemble import stdio_identity

    settings = _settings(args)
    upstreams = load_upstreams(args.upstreams)
    policies = args.policies or (DEFAULT_POLICIES if Path(DEFAULT_POLICIES).is_dir() else None)
    gateway = Gateway(upstreams, settings, policy_dir=policies)
    if args.transport == "stdio":
        identity = anyio.run(stdio_identity, settings)
        anyio.run(_serve_stdio_until_signal, gateway, identity)
        return 0
    return _serve_http(gateway)


async def _serve_stdio_until_signal(gateway: Gateway, identity: StdioIdentity) -> None:
    from mcp_guard.transports import serve_stdio

    async with anyio.create_task_group() as tg:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.info("received %s; shutting down", signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_on_signal)
        await serve_stdio(gateway, identity)
        tg.cancel_scope.cancel()


def _serve_http(gateway: Gateway) -> int:
    import uvicorn

    from mcp_guard.assemble import http_app

    app = http_app(gateway)
    server = gateway.settings.server
    logger.info("serving streamable HTTP at http://%s:%d/mcp and SSE at /sse", server.host, server.port)
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0
