"""Tool pinning: rug-pull quarantine and poisoned-tool hiding (docs/tool-pinning.md).

The gateway uses::

    async with PinStore.open(PinningConfig(path=...)) as pins:
        review = await pins.review(upstream, listing.tools)   # on every listing change
        expose(review.allowed); audit("tool_pin", review.events)
        refreshed = await pins.refresh()                      # periodically / on SIGHUP
        audit("tool_pin", refreshed.events); re-review(refreshed.upstreams)
"""

from mcp_guard.pinning.config import PinMode, PinningConfig
from mcp_guard.pinning.diff import render_diff
from mcp_guard.pinning.errors import (
    NothingPendingError,
    PinningError,
    PinStoreError,
    PoisonedToolError,
    StalePendingError,
)
from mcp_guard.pinning.fingerprint import PINNED_FIELDS, fingerprint, pinned_view
from mcp_guard.pinning.models import (
    PendingChange,
    PendingState,
    Pin,
    PinEvent,
    PinRefresh,
    PinReview,
    QuarantinedTool,
    QuarantineReason,
    ToolRecord,
    ToolState,
)
from mcp_guard.pinning.store import PinStore

__all__ = [
    "PINNED_FIELDS",
    "NothingPendingError",
    "PendingChange",
    "PendingState",
    "Pin",
    "PinEvent",
    "PinMode",
    "PinRefresh",
    "PinReview",
    "PinStore",
    "PinStoreError",
    "PinningConfig",
    "PinningError",
    "PoisonedToolError",
    "QuarantineReason",
    "QuarantinedTool",
    "StalePendingError",
    "ToolRecord",
    "ToolState",
    "fingerprint",
    "pinned_view",
    "render_diff",
]
