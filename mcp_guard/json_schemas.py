"""JSON Schema validators for tool arguments and results, compiled by ``jsonschema-rs``.

A tool's ``inputSchema`` and ``outputSchema`` are compiled when its upstream lists it (a
schema that cannot be compiled makes the tool invalid: it is skipped with a warning),
and each stage keeps the validators it uses in a :class:`ValidatorCache`.
The draft is the one ``$schema`` names, 2020-12 when it names none or one not known
(the MCP default). A ``$ref`` resolves inside the schema only: nothing is ever fetched,
so an upstream's schema cannot make the gateway reach out to a URL or read a file.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

Validator = jsonschema_rs.Validator


class InvalidSchemaError(ValueError):
    """Not a valid JSON Schema, or a ``$ref`` that does not resolve inside it."""


def compile_schema(schema: dict[str, Any]) -> Validator:
    """The validator of ``schema``.

    Raises:
        InvalidSchemaError: ``schema`` breaks its meta-schema or holds a ``$ref`` that
            does not resolve offline; the message says where.
    """
    try:
        return jsonschema_rs.validator_cls_for(schema)(schema, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        raise InvalidSchemaError(str(exc).partition("\n")[0]) from None


def first_error(validator: Validator, instance: Any) -> tuple[str, str] | None:
    """Where (``a/0/b``; empty at the root) and what the first error of ``instance`` is,
    by instance path; None if ``instance`` is valid."""
    if validator.is_valid(instance):
        return None
    error = min(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.instance_path])
    return "/".join(str(p) for p in error.instance_path), error.message


class ValidatorCache:
    """Compiled validators by tool, compiled again when a re-listing brings a new schema."""

    def __init__(self) -> None:
        self._by_tool: dict[str, tuple[dict[str, Any], Validator]] = {}

    def get(self, tool: str, schema: dict[str, Any]) -> Validator:
        """Raises: InvalidSchemaError (see :func:`compile_schema`)."""
        cached = self._by_tool.get(tool)
        if cached is None or cached[0] is not schema:
            cached = (schema, compile_schema(schema))
            self._by_tool[tool] = cached
        return cached[1]
