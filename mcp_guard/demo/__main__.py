"""``python -m mcp_guard.demo NAME``: run one bundled demo upstream."""

from __future__ import annotations

import argparse

from mcp_guard.demo.servers import SERVERS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mcp_guard.demo", description=__doc__)
    parser.add_argument("name", choices=sorted(SERVERS))
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()
    server = SERVERS[args.name]()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run(args.transport, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
