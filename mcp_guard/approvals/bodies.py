"""Reading a request body with a bound, for the admin API and the Slack endpoint.

``Request.body()`` buffers the whole body before anyone can check its size, so a
client (on the Slack endpoint, before any signature check) could make the gateway
hold gigabytes. These endpoints take small bodies and stop reading past their limit.
"""

from __future__ import annotations

from starlette.requests import Request


def declared_length_exceeds(request: Request, limit: int) -> bool:
    """Whether the request's ``Content-Length`` already says it is larger than ``limit``."""
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


async def read_bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes (the rest is not read)."""
    if declared_length_exceeds(request, limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
