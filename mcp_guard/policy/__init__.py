"""The policy engine: YAML rules (and Rego) compiled once, evaluated purely per call.

Public API::

    policies = load_policy_dir(path, known_tools=None)      # raises ConfigError
    result = policies.evaluate(PolicyRequest(...))          # -> PolicyResult
    policies.visible(principal, tool_info, now)             # tools/list filter
    policies.classify(tool_name, annotations)               # action classes

See docs/policies.md for the language and its semantics.
"""

from mcp_guard.controls.config import RawSpec
from mcp_guard.policy.actions import ActionClassifier
from mcp_guard.policy.engine import DEFAULT_THRESHOLDS, PolicySet
from mcp_guard.policy.history import InMemoryHistory
from mcp_guard.policy.loader import load_policy_dir
from mcp_guard.policy.store import PolicyStore
from mcp_guard.policy.types import (
    ACTION_CLASSES,
    ApprovalSpec,
    PolicyRequest,
    PolicyResult,
    SessionHistory,
    ToolInfo,
)

__all__ = [
    "ACTION_CLASSES",
    "DEFAULT_THRESHOLDS",
    "ActionClassifier",
    "ApprovalSpec",
    "InMemoryHistory",
    "PolicyRequest",
    "PolicyResult",
    "PolicySet",
    "PolicyStore",
    "RawSpec",
    "SessionHistory",
    "ToolInfo",
    "load_policy_dir",
]
