"""Payload inspection: PII, secrets, prompt injection, argument attacks, hidden Unicode, tool poisoning.

Public API::

    inspector = Inspector(InspectionConfig())
    findings = inspector.scan(value)          # walks a JSON value
    clean = redact(value, findings)            # a redacted copy
    poison = scan_tool_definition(tool_dict)   # MCP tool-definition poisoning
"""

from mcp_guard.inspection.config import InspectionConfig
from mcp_guard.inspection.inspector import Inspector
from mcp_guard.inspection.poisoning import scan_tool_definition
from mcp_guard.inspection.redaction import redact

__all__ = ["InspectionConfig", "Inspector", "redact", "scan_tool_definition"]
