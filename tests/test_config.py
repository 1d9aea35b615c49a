"""Configuration files: every mistake is named with file, line and key; nothing is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_guard.cli import main, with_server_flags
from mcp_guard.config.settings import ServerSettings, load_settings
from mcp_guard.errors import ConfigError
from mcp_guard.gateway import Gateway
from mcp_guard.upstreams.config import HttpUpstream, StdioUpstream, load_upstreams


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return exc.value.problems


def test_every_problem_in_an_upstreams_file_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  bank:
    command: python
    colour: blue
  web:
    type: streamable-http
    url: not-a-url
  bad__name:
    command: x
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_upstreams(path, environ={})
    assert f"{path}:4: upstreams.bank.colour: unknown key" in problems(exc)
    assert any(p.startswith(f"{path}:7: upstreams.web.url:") for p in problems(exc))
    assert any(p.startswith(f"{path}:8: upstreams.bad__name:") for p in problems(exc))


def test_an_unset_environment_variable_is_an_error_and_defaults_apply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  crm:
    type: sse
    url: "${CRM_URL:-http://127.0.0.1:9000/sse}"
    headers: {Authorization: "Bearer ${CRM_TOKEN}"}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_upstreams(path, environ={})
    assert problems(exc) == [
        f"{path}:5: upstreams.crm.headers.Authorization: environment variable CRM_TOKEN is not set"
    ]
    loaded = load_upstreams(path, environ={"CRM_TOKEN": "t0k"})
    crm = loaded.upstreams["crm"]
    assert isinstance(crm, HttpUpstream)
    assert crm.url == "http://127.0.0.1:9000/sse" and crm.headers == {"Authorization": "Bearer t0k"}


def test_claude_desktop_and_vs_code_files_are_read_unchanged(tmp_path: Path) -> None:
    claude = write(
        tmp_path,
        "claude.json",
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
                    "docs": {"type": "sse", "url": "http://127.0.0.1:9000/sse"},
                    "api": {"url": "http://127.0.0.1:9001/mcp"},
                }
            }
        ),
    )
    vscode = write(
        tmp_path,
        "mcp.json",
        json.dumps({"servers": {"fs": {"type": "stdio", "command": "npx"}}, "inputs": []}),
    )
    loaded = load_upstreams(claude, environ={})
    assert isinstance(loaded.upstreams["time"], StdioUpstream) and loaded.upstreams["time"].env == {
        "TZ": "UTC"
    }
    assert [loaded.upstreams[n].type for n in ("docs", "api")] == ["sse", "streamable-http"]
    assert isinstance(load_upstreams(vscode, environ={}).upstreams["fs"], StdioUpstream)


def test_two_upstreams_may_not_share_a_prefix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  a: {command: x, prefix: shared}
  b: {command: y, prefix: shared}
""",
    )
    with pytest.raises(ConfigError, match="prefix 'shared' is already used by upstream 'a'"):
        load_upstreams(path, environ={})


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", "upstreams:\n  a: {command: x\n")
    with pytest.raises(ConfigError) as exc:
        load_upstreams(path, environ={})
    assert problems(exc)[0].startswith(f"{path}:") and "invalid YAML" in problems(exc)[0]


def test_an_unknown_settings_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mcp-guard.yaml", "server:\n  port: 8765\n  prot: 9\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert problems(exc) == [f"{path}:3: server.prot: unknown key"]


def test_relative_state_paths_in_a_settings_file_live_next_to_it(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, "mcp-guard.yaml", "state_dir: state\naudit: {path: logs/audit.db}\n")
    settings = load_settings(path, environ={})
    assert settings.state_dir == folder / "state"
    assert settings.audit.path == folder / "logs" / "audit.db"
    assert settings.approvals.path == folder / "state" / "approvals.db"
    assert settings.pinning.path == folder / "state" / "pins.db"


def test_an_invalid_control_stops_start_up_with_its_location(tmp_path: Path) -> None:
    settings_path = write(tmp_path, "mcp-guard.yaml", "controls:\n  breakers:\n    - {upstreams: [x]}\n")
    upstreams = load_upstreams(write(tmp_path, "u.yaml", "upstreams: {x: {command: y}}\n"), environ={})
    with pytest.raises(ConfigError) as exc:
        Gateway(upstreams, load_settings(settings_path, environ={}))
    assert any(p.startswith(f"{settings_path}:2: breakers[0]") for p in problems(exc))


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_serve_flag_is_refused_as_the_same_value_in_the_settings_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no mcp-guard.yaml here: the flag alone is at fault
    write(tmp_path, "upstreams.yaml", "upstreams: {}\n")
    settings = write(tmp_path, "s.yaml", f"server:\n  port: {port}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(settings, environ={})
    (in_file,) = problems(exc)
    reason = in_file.split("server.port: ", 1)[1]
    code = main(["serve", "--transport", "http", "--port", port, "--upstreams", "upstreams.yaml"])
    assert code == 2
    assert capsys.readouterr().err == f"mcp-guard: configuration error:\n  --port {port}: {reason}\n"


def test_serve_flags_override_the_settings_file() -> None:
    server = with_server_flags(ServerSettings(port=9000, max_sessions=7), {"host": "::1", "port": 8000})
    assert (server.host, server.port, server.max_sessions) == ("::1", 8000, 7)
