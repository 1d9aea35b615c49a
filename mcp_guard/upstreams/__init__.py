"""Upstream MCP servers: configuration, supervision and the aggregated catalog."""
