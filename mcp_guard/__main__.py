"""``python -m mcp_guard`` is the ``mcp-guard`` command."""

import sys

from mcp_guard.cli import main

sys.exit(main())
