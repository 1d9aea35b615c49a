"""Bundled demo upstreams: realistic tools for trying governance offline.

Run one with ``python -m mcp_guard.demo <bank|db|mail|files> [--transport stdio|sse|streamable-http]``.
State lives in memory (bank, mail), in an in-memory SQLite database (db) and in a
sandbox folder (files), so nothing real is ever touched.
"""
