"""Action classes: configuration first, annotations only as untrusted hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_guard.policy import ActionClassifier

from .helpers import load


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"readOnlyHint": True, "openWorldHint": False}, {"read"}),
        ({"readOnlyHint": True}, {"read", "external"}),
        ({"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}, {"write"}),
        ({"destructiveHint": True, "openWorldHint": False}, {"write", "delete"}),
        (None, {"write", "delete", "external"}),  # MCP defaults: assume the worst
        ({"readOnlyHint": "yes"}, {"write", "delete", "external"}),  # non-booleans are ignored
    ],
)
def test_annotations_map_to_action_classes(annotations: dict[str, object] | None, expected: set[str]) -> None:
    assert ActionClassifier().classify("x__y", annotations) == expected


def test_configured_globs_win_over_annotations_and_combine(tmp_path: Path) -> None:
    policies = load(tmp_path, "actions:\n  'db__delete*': [delete]\n  'db__*': [privileged]\n")
    hint = {"readOnlyHint": True, "openWorldHint": False}
    assert policies.classify("db__delete_records", hint) == {"delete", "privileged"}
    assert policies.classify("db__query", hint) == {"privileged"}
    assert policies.classify("mail__send_email", hint) == {"read"}


def test_annotation_objects_with_snake_case_attributes_are_understood() -> None:
    class Annotations:
        read_only_hint = True
        open_world_hint = False

    assert ActionClassifier().classify("x__y", Annotations()) == {"read"}
