"""The forward step: a decided call sent to its upstream under the operational controls."""

from __future__ import annotations

import logging

import anyio
from mcp import types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_guard.controls import ControlRefused, Controls
from mcp_guard.errors import UpstreamUnavailableError
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.governance import control_call
from mcp_guard.pipeline.outcomes import refusal, upstream_failure
from mcp_guard.upstreams.supervisor import Upstream

logger = logging.getLogger(__name__)


async def forward(call: ToolCall, upstream: Upstream, controls: Controls) -> types.CallToolResult:
    """Send the decided ``call`` to ``upstream`` within ``controls``' concurrency slot and
    timeout, and tell the breakers how it went. Every failure is a result (an
    ``upstream_failure`` or a refusal), audited as the call's outcome: never a bare error.

    Raises:
        the cancellation exception: the caller gave up (its probe permits are released).
    """
    assert call.route is not None
    request = control_call(call)
    arguments = call.forward_arguments if call.forward_arguments is not None else call.arguments
    timeout = controls.timeout_for(upstream.name, call.tool)
    failed = True
    try:
        async with controls.concurrency(request):
            call.forwarded = True
            result = await upstream.call_tool(
                call.route.original,
                arguments,
                meta=call.meta,
                on_progress=call.report_progress,
                timeout_s=timeout,
            )
        failed = False
        await controls.record_outcome(
            request, failed=False, tool_error=bool(result.is_error), admission=call.admission
        )
        return result
    except anyio.get_cancelled_exc_class():
        failed = False  # the caller gave up (client cancel, shutdown): not the upstream's failure
        if call.admission is not None:  # no outcome will free its probe permits
            with anyio.CancelScope(shield=True):
                await controls.release_probes(call.admission)
        raise
    except ControlRefused as exc:
        failed = False  # refused before reaching the upstream: not the upstream's failure
        call.verdict = exc.verdict
        return refusal(call)
    except UpstreamUnavailableError as exc:
        return upstream_failure(call, "upstream-unavailable", str(exc))
    except TimeoutError:
        return upstream_failure(
            call,
            "upstream-timeout",
            f"upstream '{upstream.name}' did not answer within {timeout:g}s; the call was cancelled upstream",
        )
    except MCPError as exc:
        return upstream_failure(call, "upstream-error", f"upstream '{upstream.name}' failed: {exc}")
    except ValidationError as exc:
        return upstream_failure(
            call,
            "upstream-malformed",
            f"upstream '{upstream.name}' returned a malformed result "
            f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']})",
        )
    except Exception as exc:  # fail closed, with the outcome audited: never a bare error
        logger.exception("calling %s on upstream %s failed unexpectedly", call.tool, upstream.name)
        return upstream_failure(
            call, "upstream-error", f"upstream '{upstream.name}' failed: {type(exc).__name__}: {exc}"
        )
    finally:
        if failed:
            with anyio.CancelScope(shield=True):
                await controls.record_outcome(request, failed=True, admission=call.admission)
