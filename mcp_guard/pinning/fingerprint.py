"""The security-relevant view of a tool definition and its fingerprint.

What is pinned is everything the model reads or a policy decides on: ``name``,
``title``, ``description``, ``inputSchema`` (with every parameter description, enum,
default and example), ``outputSchema`` and ``annotations`` (``readOnlyHint`` and
friends feed the risk score). Left out, on purpose:

* ``_meta`` -- free-form protocol metadata (progress tokens, vendor hints, build ids)
  that servers legitimately change between releases; it is not shown to the model;
* ``icons`` -- shown to people in a client UI, never to the model;
* ``execution`` -- how the call is transported (task support), not what it does.

The view is computed from the ORIGINAL upstream definition (before namespacing).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mcp import types

from mcp_guard.audit.canonical import canonical_bytes

PINNED_FIELDS = frozenset({"name", "title", "description", "inputSchema", "outputSchema", "annotations"})


def pinned_view(tool: types.Tool) -> dict[str, Any]:
    """The pinned parts of ``tool`` as plain JSON (absent, ``null`` and empty annotations are alike)."""
    dumped = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    view = {key: value for key, value in dumped.items() if key in PINNED_FIELDS}
    if not view.get("annotations"):
        view.pop("annotations", None)
    return view


def fingerprint_view(view: Any) -> str:
    """SHA-256 (lower-case hex) over the RFC 8785 canonical JSON of a pinned view.

    Raises:
        ValueError: the view holds a lone surrogate (no valid MCP message can).
    """
    return hashlib.sha256(canonical_bytes(view)).hexdigest()


def fingerprint(tool: types.Tool) -> str:
    """The fingerprint of ``tool``'s pinned view (see the module docstring for what it covers).

    Raises:
        ValueError: the definition holds a lone surrogate (no valid MCP message can).
    """
    return fingerprint_view(pinned_view(tool))
