"""mcp-guard: an MCP gateway that governs what AI agents may do with their tools."""

__version__ = "0.1.0"
