"""Delivering one notification with retries: exponential backoff until delivered or the request ends.

The request is already persisted when delivery starts, and each attempt's outcome is
persisted too, so a restart resumes unfinished deliveries and nothing is lost. When the
approvals database cannot be read or written (locked by another writer, the disk full),
the delivery waits and tries again, with the same backoff, rather than stop.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import httpx2

from mcp_guard.approvals.config import RetryPolicy
from mcp_guard.approvals.models import ApprovalState, DeliveryState, DeliveryStatus
from mcp_guard.approvals.notifiers.base import DeliveryError, Notifier
from mcp_guard.approvals.store import ApprovalStore, ApprovalStoreError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
OnDelivery = Callable[[DeliveryStatus], None]
T = TypeVar("T")
STORE_ERRORS = (ApprovalStoreError, sqlite3.Error)
"""What the approvals database raises when it cannot serve a read or a write now."""


def backoff(policy: RetryPolicy, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``initial_s * factor**(attempts-1)``, capped."""
    return float(min(policy.initial_s * policy.factor ** max(attempts - 1, 0), policy.max_s))


async def deliver(
    notifier: Notifier,
    request_id: str,
    *,
    store: ApprovalStore,
    client: httpx2.AsyncClient,
    policy: RetryPolicy,
    clock: Callable[[], datetime],
    sleep: Sleep,
    attempts: int = 0,
    on_delivery: OnDelivery | None = None,
) -> DeliveryStatus:
    """Send ``notifier``'s message for ``request_id`` until it is delivered or no longer useful.

    Gives up (state ``gave_up``) only when the request is no longer pending or its
    ttl has run out. Each outcome is persisted before ``on_delivery`` sees it; a read or
    write the approvals database refuses is logged and tried again after a backoff.
    """

    async def in_store(what: str, operation: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                return await operation()
            except STORE_ERRORS as exc:
                failures += 1
                delay = backoff(policy, failures)
                logger.error(
                    "approval %s: channel %r: cannot %s in the approvals database (%s); retrying in %.1fs",
                    request_id,
                    notifier.name,
                    what,
                    exc,
                    delay,
                )
                await sleep(delay)

    async def record(state: DeliveryState, error: str | None) -> DeliveryStatus:
        status = await in_store(
            f"record its delivery state ({state})",
            lambda: store.update_delivery(
                request_id, notifier.name, state=state, attempts=attempts, last_error=error, at=clock()
            ),
        )
        if on_delivery is not None:
            on_delivery(status)
        return status

    while True:
        request = await in_store("read the request", lambda: store.get(request_id))
        if request is None or request.state is not ApprovalState.PENDING:
            return await record("gave_up", "the request is no longer pending")
        if clock() >= request.expires_at:
            return await record("gave_up", "the request expired before delivery")
        error: str
        try:
            await notifier.send(request, client)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # boundary: a notifier bug must not stop retries or the service
            logger.exception("approval notifier %r raised unexpectedly", notifier.name)
            error = f"{type(exc).__name__}: {exc}"
        else:
            attempts += 1
            return await record("delivered", None)
        attempts += 1
        await record("pending", error)
        delay = backoff(policy, attempts)
        logger.warning(
            "approval %s: channel %r attempt %d failed (%s); retrying in %.1fs",
            request_id,
            notifier.name,
            attempts,
            error,
            delay,
        )
        remaining = (request.expires_at - clock()).total_seconds()
        await sleep(max(0.0, min(delay, remaining)))
