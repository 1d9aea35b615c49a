"""The ``mcp-guard`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import anyio

from mcp_guard import __version__
from mcp_guard.config.settings import GatewaySettings, load_settings
from mcp_guard.errors import ConfigError
from mcp_guard.gateway import Gateway
from mcp_guard.principal import LOCAL_PRINCIPAL
from mcp_guard.upstreams.config import load_upstreams

logger = logging.getLogger("mcp_guard")


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
    serve.add_argument("--policies", default=None, help="policy folder")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default=None, help="HTTP listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default 8765)")
    serve.add_argument("--config", default=None, help="gateway settings file (mcp-guard.yaml)")
    serve.set_defaults(func=_serve)
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
    except KeyboardInterrupt:
        return 130
    return code


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    upstreams = load_upstreams(args.upstreams)
    gateway = Gateway(upstreams, settings)
    if args.transport == "stdio":
        anyio.run(_serve_stdio_until_signal, gateway)
        return 0
    return _serve_http(gateway, settings)


async def _serve_stdio_until_signal(gateway: Gateway) -> None:
    from mcp_guard.transports import serve_stdio

    async with anyio.create_task_group() as tg:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
                async for signum in signals:
                    logger.info("received %s; shutting down", signal.Signals(signum).name)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_on_signal)
        await serve_stdio(gateway, LOCAL_PRINCIPAL)
        tg.cancel_scope.cancel()


def _serve_http(gateway: Gateway, settings: GatewaySettings) -> int:
    import uvicorn

    from mcp_guard.transports import build_http_app

    app = build_http_app(gateway, resolve_principal=lambda ctx: LOCAL_PRINCIPAL)
    logger.warning("authentication is not configured: every HTTP client acts as the local principal")
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0
