# mcp-guard with the bundled example. Build: docker build -t mcp-guard .
# Run:   docker run --rm -p 8765:8765 mcp-guard
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 guard
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mcp_guard ./mcp_guard
RUN pip install --no-cache-dir .
COPY upstreams.yaml mcp-guard.yaml ./
COPY policies ./policies
RUN mkdir -p /app/var && chown -R guard:guard /app/var
USER guard

EXPOSE 8765
# /healthz is unauthenticated and names nothing: 200 once serving (ok or degraded), 503 while starting.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=2).status != 200)"]
# Listening on 0.0.0.0 requires `auth:` in mcp-guard.yaml (a local principal is loopback-only):
# mount your own mcp-guard.yaml with JWT verification configured.
CMD ["mcp-guard", "serve", "--transport", "http", "--host", "0.0.0.0"]
