"""Stages and the chain that runs them, timed by name, failing closed.

A stage is a small object with a ``name`` and one async method. A decision stage
returns ``None`` to let the call continue (it may have changed the call) or a
:class:`Verdict` to stop it there. A result stage receives the upstream's result
and returns the (possibly changed) result the client will see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from mcp import types

from mcp_guard.decision import Decision, Verdict
from mcp_guard.errors import GuardError, UnknownToolError
from mcp_guard.pipeline.call import ToolCall
from mcp_guard.pipeline.outcomes import refusal

logger = logging.getLogger(__name__)


class Stage(Protocol):
    name: str

    async def __call__(self, call: ToolCall) -> Verdict | None: ...


class ResultStage(Protocol):
    name: str

    async def __call__(self, call: ToolCall, result: types.CallToolResult) -> types.CallToolResult: ...


def internal_error(stage: str, exc: BaseException) -> Verdict:
    return Verdict(
        decision=Decision.BLOCK,
        rules=("internal-error",),
        reason=f"mcp-guard could not check this call (stage '{stage}' failed: "
        f"{type(exc).__name__}); it was not forwarded",
    )


class Chain:
    """Runs decision stages in order; any unexpected error blocks the call (fail closed)."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    async def run(self, call: ToolCall) -> Verdict:
        """The final verdict for ``call``.

        Raises:
            UnknownToolError: the tool does not exist or the caller may not see it.
        """
        for stage in self.stages:
            started = time.perf_counter()
            try:
                outcome = await stage(call)
            except UnknownToolError:
                raise
            except GuardError as exc:
                outcome = Verdict(decision=Decision.BLOCK, rules=(stage.name,), reason=str(exc))
            except Exception as exc:  # fail-closed boundary of every call
                logger.exception("stage %s failed for %s", stage.name, call.tool)
                outcome = internal_error(stage.name, exc)
            finally:
                call.timings_us[stage.name] = (time.perf_counter() - started) * 1e6
            if outcome is not None:
                call.verdict = outcome
                return outcome
        return call.verdict


class ResultChain:
    """Runs result stages in order; an unexpected error replaces the result with an error."""

    def __init__(self, stages: Sequence[ResultStage]) -> None:
        self.stages = tuple(stages)

    async def run(self, call: ToolCall, result: types.CallToolResult) -> types.CallToolResult:
        for stage in self.stages:
            started = time.perf_counter()
            try:
                result = await stage(call, result)
            except Exception as exc:  # fail-closed boundary: never pass an unchecked result
                logger.exception("result stage %s failed for %s", stage.name, call.tool)
                call.verdict = internal_error(stage.name, exc)
                return refusal(call)
            finally:
                call.timings_us[stage.name] = (time.perf_counter() - started) * 1e6
        return result
