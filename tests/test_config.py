"""Configuration files: every mistake is named with file, line and key; nothing is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_guard.cli import main, with_server_flags
from mcp_guard.config.settings import ServerSettings, load_settings
from mcp_guard.config.yaml_source import MAX_ALIAS_VALUES, MAX_DEPTH, load_yaml
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


def load_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_upstreams(path, environ={})
    return problems(exc)


def test_a_merge_key_brings_in_the_anchored_mapping_and_the_mapping_s_own_keys_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  a: &common
    command: echo
    args: [one]
    call_timeout_s: 5
  b:
    <<: *common
    args: [two]
""",
    )
    b = load_upstreams(path, environ={}).upstreams["b"]
    assert isinstance(b, StdioUpstream)
    assert (b.command, b.args, b.call_timeout_s) == ("echo", ["two"], 5)


def test_a_merge_key_takes_a_list_of_mappings_and_the_earlier_ones_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """state_dir: &dirs {path: first}
sessions: &limits {idle_ttl_s: 10, max_calls: 5}
audit:
  <<: [{retention_days: 7, checkpoint_every: 3}, {retention_days: 9, arguments: digest}]
  checkpoint_every: 4
""",
    )
    doc = load_yaml(path)
    assert doc.data["audit"] == {"retention_days": 7, "checkpoint_every": 4, "arguments": "digest"}
    assert doc.line_of(("audit", "retention_days")) == 4 and doc.line_of(("audit", "checkpoint_every")) == 5


def test_an_error_in_a_merged_value_names_the_line_where_the_value_is_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  a: &common
    command: echo
    call_timeout_s: -1
  b:
    <<: *common
    args: [x]
""",
    )
    assert load_problems(path) == [
        f"{path}:4: upstreams.a.call_timeout_s: Input should be greater than 0",
        f"{path}:4: upstreams.b.call_timeout_s: Input should be greater than 0",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  <<: 5\n", ":2: upstreams: a merge key '<<' takes a mapping or a list of mappings"),
        (
            "  a: &self\n    <<: *self\n",
            ":3: upstreams.a: a merge key '<<' refers to a mapping that contains it",
        ),
        ("  <<: {a: {command: x}}\n  <<: {b: {command: y}}\n", ":3: duplicate key '<<'"),
    ],
)
def test_a_merge_key_that_cannot_be_applied_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "u.yaml", "upstreams:\n" + text)
    assert load_problems(path) == [f"{path}{message}"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("123", "upstreams.123: a key must be a string, not int (quote it)"),
        ("null", "upstreams.null: a key must be a string, not null (quote it)"),
        ("on", "upstreams.on: a key must be a string, not bool (quote it)"),
        ("? [a, b]\n  ", "upstreams: a key must be a string, not a list"),
    ],
)
def test_a_mapping_key_that_is_not_a_string_is_an_error_naming_its_line(
    tmp_path: Path, key: str, message: str
) -> None:
    path = write(tmp_path, "u.yaml", f"upstreams:\n  x: {{command: y}}\n  {key}: {{command: z}}\n")
    assert load_problems(path) == [f"{path}:3: {message}"]


def test_a_quoted_number_is_a_valid_upstream_name(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", 'upstreams:\n  "123": {command: y}\n')
    assert list(load_upstreams(path, environ={}).upstreams) == ["123"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-13-45", "'2024-13-45' is not a valid timestamp"),
        ("!!bool maybe", "'maybe' is not a valid bool"),
        ("!secret x", "could not determine a constructor for the tag '!secret'"),
    ],
)
def test_a_value_yaml_cannot_construct_is_an_error_naming_its_line(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write(tmp_path, "u.yaml", f"upstreams:\n  x:\n    command: y\n    cwd: {value}\n")
    assert load_problems(path) == [f"{path}:4: upstreams.x.cwd: {message}"]


def test_an_alias_inside_the_value_it_names_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", "upstreams:\n  a: &x\n    command: echo\n    args: [*x]\n")
    assert load_problems(path) == [
        f"{path}:2: upstreams.a.args.0: an alias refers to a value that contains it (recursive structure)"
    ]


def test_aliases_may_repeat_values_up_to_a_bound(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  a: {command: echo, args: &args [--verbose, --color]}
  b: {command: echo, args: *args}
""",
    )
    assert load_upstreams(path, environ={}).upstreams["b"] == StdioUpstream(
        command="echo", args=["--verbose", "--color"]
    )


def test_aliases_that_would_expand_past_the_bound_are_refused(tmp_path: Path) -> None:
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 8))
    path = write(tmp_path, "u.yaml", f"l0: &l0 [x]\n{levels}upstreams: {{a: {{command: x, args: *l7}}}}\n")
    found = load_problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:")
    assert found[0].endswith(f"aliases repeat more than {MAX_ALIAS_VALUES} values; refusing to expand them")


def test_merge_keys_count_against_the_alias_bound(tmp_path: Path) -> None:
    keys = ", ".join(f"k{i}: 1" for i in range(10))
    levels = "".join(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}\n" for i in range(1, 9))
    path = write(tmp_path, "u.yaml", f"m0: &m0 {{{keys}}}\n{levels}")
    assert load_problems(path)[0].endswith("refusing to expand them")


def test_nesting_deeper_than_the_bound_is_refused(tmp_path: Path) -> None:
    shallow = write(tmp_path, "shallow.yaml", "upstreams: " + "[" * 150 + "]" * 150 + "\n")
    deep = write(tmp_path, "deep.yaml", "upstreams: " + "[" * 3000 + "]" * 3000 + "\n")
    assert load_problems(shallow) == [f"{shallow}:1: nested more than {MAX_DEPTH} levels deep"]
    assert load_problems(deep) == [f"{deep}:1: invalid YAML: nested more than {MAX_DEPTH} levels deep"]


def test_an_error_under_an_upper_case_key_names_that_key_and_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  files:
    command: echo
    env:
      TOKEN: 5
  B:
    type: http
    url: http://x
    headers:
      Authorization: 123
""",
    )
    assert load_problems(path) == [
        f"{path}:5: upstreams.files.env.TOKEN: Input should be a valid string",
        f"{path}:10: upstreams.B.headers.Authorization: Input should be a valid string",
    ]


def test_an_error_under_an_upper_case_key_in_a_claude_desktop_file_names_that_key(tmp_path: Path) -> None:
    path = write(tmp_path, "claude.json", '{"mcpServers": {"x": {"command": "a",\n "env": {"TOKEN": 5}}}}\n')
    assert load_problems(path) == [f"{path}:2: mcpServers.x.env.TOKEN: Input should be a valid string"]


def test_settings_errors_keep_upper_case_keys_and_drop_union_member_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mcp-guard.yaml",
        """approvals:
  channels:
    finance-slack: {type: slack, webhook_url: 5}
    Finance:
      type: slack
  slack:
    signing_secret: "12345678"
    users:
      U0123ABCD: {roles: [x]}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert problems(exc) == [
        f"{path}:3: approvals.channels.finance-slack.webhook_url: Input should be a valid string",
        f"{path}:4: approvals.channels.Finance.webhook_url: required key is missing",
        f"{path}:9: approvals.slack.users.U0123ABCD.user: required key is missing",
    ]


@pytest.mark.parametrize(
    "reference",
    ["${A:-${B}}", "${}", "${bad-name}", "${X:=y}", "${X-y}", "${X", "${input:api-key}", "${X:-{}}"],
)
def test_a_malformed_reference_is_an_error_naming_file_line_and_key(tmp_path: Path, reference: str) -> None:
    path = write(tmp_path, "u.yaml", f"upstreams:\n  a:\n    command: echo\n    args: [ok, '{reference}']\n")
    found = load_problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:4: upstreams.a.args.1: malformed reference '${{")
    assert found[0].endswith("(expected ${NAME} or ${NAME:-default}; $$ is a literal $)")


def test_a_dollar_without_a_brace_stays_and_a_double_dollar_is_one_dollar(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """upstreams:
  a:
    command: echo
    args: ["$VAR", "cost: 5$", "$${X}", "${X:-a$$b}", "${X:-}", "${Y}"]
""",
    )
    a = load_upstreams(path, environ={"Y": "${Z}"}).upstreams["a"]
    assert isinstance(a, StdioUpstream)
    assert a.args == ["$VAR", "cost: 5$", "${X}", "a$b", "", "${Z}"]


@pytest.mark.parametrize(
    ("flag", "value"), [("port", "70000"), ("port", "-1"), ("host", ""), ("host", "127.0.0.1 ::1")]
)
def test_a_serve_flag_is_refused_as_the_same_value_in_the_settings_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no mcp-guard.yaml here: the flag alone is at fault
    write(tmp_path, "upstreams.yaml", "upstreams: {}\n")
    settings = write(tmp_path, "s.yaml", f"server:\n  {flag}: {json.dumps(value)}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(settings, environ={})
    (in_file,) = problems(exc)
    reason = in_file.split(f"server.{flag}: ", 1)[1]
    code = main(["serve", "--transport", "http", f"--{flag}", value, "--upstreams", "upstreams.yaml"])
    assert code == 2
    shown = value if flag == "port" else repr(value)  # as parsed: --port is a number
    assert capsys.readouterr().err == f"mcp-guard: configuration error:\n  --{flag} {shown}: {reason}\n"


def test_serve_flags_override_the_settings_file() -> None:
    server = with_server_flags(ServerSettings(port=9000, max_sessions=7), {"host": "::1", "port": 8000})
    assert (server.host, server.port, server.max_sessions) == ("::1", 8000, 7)


def test_a_per_principal_session_bound_below_one_is_refused_naming_it(tmp_path: Path) -> None:
    settings = write(tmp_path, "s.yaml", "server:\n  max_sessions_per_principal: 0\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(settings, environ={})
    (problem,) = problems(exc)
    assert "server.max_sessions_per_principal: Input should be greater than 0" in problem
