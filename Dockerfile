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
# Listening on 0.0.0.0 requires `auth:` in mcp-guard.yaml (a local principal is loopback-only):
# mount your own mcp-guard.yaml with JWT verification configured.
CMD ["mcp-guard", "serve", "--transport", "http", "--host", "0.0.0.0"]
