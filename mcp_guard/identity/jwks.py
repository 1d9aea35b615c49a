"""A JWKS fetched from an identity provider's URL, cached and refreshed carefully.

The key set is fetched on first use, again when it is older than the cache TTL, and
again when a token names a ``kid`` the cache does not hold: but never more than once
per refresh interval, so a flood of tokens with made-up key ids cannot turn the
gateway into a traffic amplifier against the IdP. Fetches have a total time limit
and a response-size limit; a failed fetch keeps the keys already known.

HTTP goes through ``httpx2``, the client the MCP SDK itself depends on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import anyio
import httpx2

from mcp_guard.identity.keys import VerificationKey, keys_from_jwks

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class JwksFetchError(Exception):
    """A JWKS could not be fetched or parsed. The message is for logs, not for clients."""


class RemoteJwks:
    """The keys published at one JWKS URL.

    ``clock`` (monotonic seconds) is injectable so refresh timing can be tested
    without sleeping.
    """

    def __init__(
        self,
        url: str,
        allowed: frozenset[str],
        *,
        origin: str,
        refresh_interval_s: float,
        cache_ttl_s: float,
        timeout_s: float,
        max_bytes: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.url = url
        self.allowed = allowed
        self.origin = origin
        self.refresh_interval_s = refresh_interval_s
        self.cache_ttl_s = cache_ttl_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = anyio.Lock()
        self._keys: list[VerificationKey] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self.fetch_count = 0
        """How many fetches were attempted (for tests and metrics)."""

    @property
    def keys(self) -> list[VerificationKey]:
        """The keys from the last successful fetch (empty before the first)."""
        return self._keys

    def _may_attempt(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.refresh_interval_s

    def _is_stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.cache_ttl_s

    def needs_refresh(self) -> bool:
        """Whether the cache is empty or older than its TTL and a fetch is allowed now."""
        now = self._clock()
        return self._is_stale(now) and self._may_attempt(now)

    async def ensure_fresh(self) -> None:
        """Fetch the key set if it was never fetched or is older than the cache TTL.

        Never raises for network or format problems: they are logged and the keys
        already known stay in use.
        """
        if self.needs_refresh():
            await self._refresh(lambda now: self._is_stale(now) and self._may_attempt(now))

    async def refresh_for_unknown_kid(self) -> bool:
        """Refetch because a token named an unknown ``kid``, unless one was tried too recently.

        Returns whether a fetch was attempted. Never raises for network or format problems.
        """
        if not self._may_attempt(self._clock()):
            return False
        return await self._refresh(self._may_attempt)

    async def _refresh(self, still_needed: Callable[[float], bool]) -> bool:
        async with self._lock:
            # Another task may have refreshed while this one waited for the lock.
            if not still_needed(self._clock()):
                return False
            self._attempted_at = self._clock()
            self.fetch_count += 1
            try:
                keys = await self._fetch()
            except JwksFetchError as exc:
                logger.warning("JWKS %s: keeping %d known key(s): %s", self.url, len(self._keys), exc)
                return True
            self._keys = keys
            self._fetched_at = self._clock()
            return True

    async def _fetch(self) -> list[VerificationKey]:
        body = bytearray()
        try:
            with anyio.fail_after(self.timeout_s):
                async with (
                    httpx2.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client,
                    client.stream("GET", self.url, headers={"accept": "application/json"}) as response,
                ):
                    if response.status_code != 200:
                        raise JwksFetchError(f"HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        body.extend(chunk)
                        if len(body) > self.max_bytes:
                            raise JwksFetchError(f"response larger than {self.max_bytes} bytes")
        except TimeoutError:
            raise JwksFetchError(f"no complete response within {self.timeout_s}s") from None
        except httpx2.HTTPError as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(bytes(body))
            keys, problems = keys_from_jwks(document, self.allowed, self.origin)
        except ValueError as exc:
            raise JwksFetchError(f"invalid JWKS: {exc}") from None
        for problem in problems:
            logger.warning("skipping JWKS entry: %s", problem)
        if not keys:
            raise JwksFetchError("no usable signing key in the document")
        return keys
