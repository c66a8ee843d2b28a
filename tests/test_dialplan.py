"""Dialplan as code: YAML validation, secrets kept out of git, escaping of untrusted strings, and the
rendered configs checked by asterisklint (PyPI), a third-party Asterisk config checker.

asterisklint parses extensions.conf (dialplan-check, modules-show) and func_odbc.conf only; the other rendered
files (pjsip.conf, manager.conf, ...) are checked by the real Asterisk loading them in
tests/test_asterisk_engine.py, and structurally below."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sip import dialplan
from switchboard.core import config

HOSTILE = [
    '"),Hangup()',
    "evil\n[evil]\nexten => 1,1,System(rm -rf /)",
    "a;b ; comment",
    "${SHELL(touch /tmp/pwned)}",
    "x,Set(GLOBAL(P)=1)",
    '坏人"<9999>\r\ncallerid=',
]


def settings_for(var_dir: Path) -> config.Settings:
    return config.load(path=var_dir / "absent.toml", environ={"SWITCHBOARD_PATHS_VAR_DIR": str(var_dir)})


def render(tmp_path: Path, definition: dialplan.Definition, fallback=None) -> dict[str, str]:
    return dialplan.render(
        settings_for(tmp_path), definition, modules_dir=Path("/m"), sbin_dir=Path("/s"), fallback=fallback
    )


def structure(text: str) -> list[str]:
    """Sections, keys, extensions and priorities of a config file: everything but the values."""
    shape = []
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip() if not line.lstrip().startswith("exten") else line.strip()
        if not line:
            continue
        if line.startswith("["):
            shape.append(line)
        elif line.startswith(("exten", "same")):
            shape.append(re.sub(r",.*", "", line.split("=>", 1)[1]).strip() + "|" + line.split("(", 1)[0])
        else:
            shape.append(re.split(r"\s*=>?\s*", line, maxsplit=1)[0])
    return shape


def test_default_definition_is_valid() -> None:
    definition = dialplan.load_definition()
    assert [e.number for e in definition.extensions] == [f"800{i}" for i in range(1, 10)]
    assert {h.number for h in definition.hotlines} == {"12350", "63000000"}
    assert definition.ring_groups[0].timeout > 0


def test_yaml_in_git_holds_no_secrets() -> None:
    text = (Path(dialplan.__file__).parent.parent / "dialplans" / "default.yaml").read_text()
    assert not re.search(r"^\s*(password|secret)\s*:", text, re.MULTILINE)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"extensions": [{"number": "80a1"}]}, "extensions.0.number"),
        ({"ring_groups": [{"name": "duty", "members": ["8001"], "timeout": "soon"}]}, "ring_groups.0.timeout"),
        ({"extensions": [{"number": "8001", "colour": "red"}]}, "extensions.0.colour"),
        ({"hotlines": [{"number": "12350", "group": "nobody"}]}, "hotlines.0.group"),
        ({"trunks": [{"name": "t", "host": "evil;host"}]}, "trunks.0.host"),
        ({"extensions": [{"number": "8001"}, {"number": "8001"}]}, "重复"),
    ],
)
def test_bad_yaml_is_refused_naming_the_key(data: dict, key: str) -> None:
    with pytest.raises(dialplan.DialplanError, match=re.escape(key)):
        dialplan.parse_definition(data, "test.yaml")


def test_bad_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("extensions: [{number: 8001\n")
    with pytest.raises(dialplan.DialplanError, match="plan.yaml"):
        dialplan.load_definition(path)


@pytest.mark.parametrize("name", HOSTILE)
def test_callerid_name_cannot_break_out(name: str) -> None:
    safe = dialplan.callerid_name(name)
    assert not set(safe) & set("\"',;()${}[]<>\\\n\r=|")


@pytest.mark.parametrize("number", ["12a", "8001;", "8001)", "${EXTEN}", "", "1" * 21, "80 01", "8001\n"])
def test_dial_number_is_strict(number: str) -> None:
    with pytest.raises(dialplan.DialplanError):
        dialplan.dial_number(number)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_do_not_change_the_rendered_structure(tmp_path: Path, name: str) -> None:
    plain = dialplan.parse_definition(
        {"extensions": [{"number": "8001", "name": "值班台"}], "conferences": [{"number": "8600", "name": "会商"}]}
    )
    hostile = dialplan.parse_definition(
        {"extensions": [{"number": "8001", "name": name}], "conferences": [{"number": "8600", "name": name}]}
    )
    a, b = render(tmp_path / "a", plain), render(tmp_path / "b", hostile)
    for file in ("pjsip.conf", "extensions.conf"):
        assert structure(a[file]) == structure(b[file]), file
    callerid = next(line for line in b["pjsip.conf"].splitlines() if line.startswith("callerid"))
    assert re.fullmatch(r'callerid = "[^"]*" <8001>', callerid)


def test_hostile_fallback_number_is_dropped(tmp_path: Path) -> None:
    definition = dialplan.load_definition()
    good = render(tmp_path / "a", definition, {"duty": "13800000000"})["extensions.conf"]
    assert "PJSIP/13800000000@trunk" in good
    for bad in ("138,1)", "13800000000)\nsame => n,System(x)", "${SHELL(id)}"):
        text = render(tmp_path / "b", definition, lambda group, bad=bad: bad)["extensions.conf"]
        assert structure(text) == structure(render(tmp_path / "c", definition)["extensions.conf"])
        assert "System" not in text and "SHELL" not in text


def test_inbound_caller_id_reaches_arguments_only_through_functions(tmp_path: Path) -> None:
    text = render(tmp_path, dialplan.load_definition())["extensions.conf"]
    for use in re.findall(r".{0,20}\$\{CALLERID\([^)]*\)\}", text):
        assert use.endswith(("FILTER(0123456789+,${CALLERID(num)}", "BASE64_ENCODE(${CALLERID(name)}")), use
    assert "${EXTEN}" not in text.replace("FILTER(0123456789+,${EXTEN})", "").replace("FILTER(0123456789,${EXTEN})", "")


def section(text: str, name: str) -> str:
    return text.split(f"\n[{name}]\n", 1)[1].split("\n[", 1)[0]


@pytest.mark.parametrize("record", [True, False])
def test_hotline_and_desk_calls_are_recorded_as_configured(tmp_path: Path, record: bool) -> None:
    environ = {"SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path), "SWITCHBOARD_ASTERISK_RECORD_CALLS": str(record).lower()}
    settings = config.load(path=tmp_path / "absent.toml", environ=environ)
    definition = dialplan.load_definition()
    text = dialplan.render(settings, definition, modules_dir=Path("/m"), sbin_dir=Path("/s"))["extensions.conf"]
    assert ("MixMonitor(${SB_RECORDING},b)" in section(text, "switchboard-record")) is record
    assert section(text, "hotlines").count("Gosub(switchboard-record,s,1)") == len(definition.hotlines)
    assert "Gosub(switchboard-record,s,1)" in section(text, "desk-call")
    desks = section(text, "desk-desks")
    assert all(f"exten => {e.number},1,Gosub(desk-call,s,1({e.number}))" in desks for e in definition.extensions)
    assert "Gosub(desk-call,s,1(${NUMBER}))" in section(text, "desk-outside")


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    definition = dialplan.load_definition()
    first = dialplan.phone_secrets(settings, definition)
    assert definition.probe is not None
    assert set(first) == {e.number for e in definition.extensions} | {definition.probe.number}
    assert dialplan.phone_secrets(settings, definition) == first
    path = tmp_path / "asterisk" / "phone_secrets.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    secret = dialplan.ami_secret(settings)
    assert dialplan.ami_secret(settings) == secret
    assert (tmp_path / "asterisk" / "ami_secret").stat().st_mode & 0o777 == 0o600
    manager = render(tmp_path, definition)["manager.conf"]
    assert f"secret = {secret}" in manager and "bindaddr = 127.0.0.1" in manager
    assert "channelvars = INCIDENT_ID" in manager


def test_probe_registers_like_a_desk_and_calls_from_the_control_planes_context(tmp_path: Path) -> None:
    """The line check's calls must not be recorded or announced as desk calls: they enter from-switchboard."""
    definition = dialplan.load_definition()
    assert definition.probe is not None and definition.echo_test
    probe = definition.probe.number
    rendered = render(tmp_path, definition)
    endpoint = section(rendered["pjsip.conf"], probe)
    assert "context = from-switchboard" in endpoint and f"auth = {probe}-auth" in endpoint
    password = dialplan.phone_secrets(settings_for(tmp_path), definition)[probe]
    assert f"password = {password}" in section(rendered["pjsip.conf"], f"{probe}-auth")
    echo = f"exten => {definition.echo_test},1,Answer()\n same => n,Echo()"
    assert echo in section(rendered["extensions.conf"], "internal")
    with pytest.raises(dialplan.DialplanError, match="号码重复：8001"):
        dialplan.parse_definition({"extensions": [{"number": "8001"}], "probe": {"number": "8001"}})


def test_configured_ami_secret_must_be_a_single_token(tmp_path: Path) -> None:
    settings = config.load(
        path=tmp_path / "absent.toml",
        environ={"SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path), "SWITCHBOARD_ASTERISK_AMI_SECRET": "x\n[evil]"},
    )
    with pytest.raises(dialplan.DialplanError):
        dialplan.ami_secret(settings)


def test_port_ranges_are_rendered(tmp_path: Path) -> None:
    files = render(tmp_path, dialplan.load_definition())
    assert "rtpstart = 20000" in files["rtp.conf"] and "udptlstart = 21000" in files["udptl.conf"]
    assert "\n[directories]\n" in files["asterisk.conf"]
    assert "autoload = no" in files["modules.conf"]


def _asterisklint(command: str, path: Path) -> subprocess.CompletedProcess[str]:
    lint = str(Path(sys.executable).with_name("asterisklint"))  # the checker's console script in this venv
    return subprocess.run([lint, command, path.name], cwd=path.parent, capture_output=True, text=True, timeout=60)


def test_rendered_dialplan_passes_asterisklint(tmp_path: Path) -> None:
    files = render(tmp_path, dialplan.load_definition(), {"duty": "13800000000"})
    path = tmp_path / "extensions.conf"
    path.write_text(files["extensions.conf"])
    result = _asterisklint("dialplan-check", path)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    # Every module the dialplan uses (per asterisklint) is in our explicit modules.conf list.
    used = set(re.findall(r"^load => (\S+)\.so", _asterisklint("modules-show", path).stdout, re.MULTILINE))
    assert used and used <= set(dialplan.MODULES), used - set(dialplan.MODULES)


def test_bridges_render_pins_profiles_and_prompts(tmp_path: Path) -> None:
    definition = dialplan.parse_definition(
        {
            "conferences": [
                {"number": "8600", "name": "会商", "max_members": 12, "wait_for_moderator": True},
                {"number": "8601", "pin": "2468", "moderator_pin": "1357", "record": False, "announce": False},
            ]
        }
    )
    files = render(tmp_path, definition)
    pins = dialplan.bridge_pins(settings_for(tmp_path), definition)
    assert pins["8601"] == dialplan.BridgePins("2468", "1357")
    generated = tmp_path / "asterisk" / "bridge_pins.toml"
    assert generated.stat().st_mode & 0o777 == 0o600  # only 8600's PINs were generated, privately
    assert re.fullmatch(r"[0-9]{6}", pins["8600"].participant) and pins["8600"].participant != pins["8600"].moderator
    assert dialplan.bridge_pins(settings_for(tmp_path), definition) == pins  # generated once

    bridges = files["confbridge.conf"]
    profile_8600 = bridges.split("[bridge_8600]")[1].split("[bridge_8601]")[0]
    assert "max_members = 12" in profile_8600 and "record_conference = yes" in profile_8600
    assert "wait_marked = yes" in profile_8600.split("[participant_8600]")[1].split("[moderator_8600]")[0]
    assert "admin = yes" in profile_8600.split("[moderator_8600]")[1] and "marked = yes" in profile_8600
    assert f"sound_join = {tmp_path}/asterisk/prompts/bridge-join" in profile_8600
    assert "quiet = yes" in bridges.split("[participant_8601]")[1]
    assert "record_conference = no" in bridges.split("[bridge_8601]")[1]

    plan = files["extensions.conf"]
    assert 'GotoIf($["${SB_PIN}" = "1357"]?moderator)' in plan and 'GotoIf($["${SB_PIN}" = "2468"]?participant)' in plan
    assert f'GotoIf($["${{SB_PIN}}" = "{pins["8600"].moderator}"]?moderator)' in plan
    assert "exten => 8600,1,Goto(bridge-pin,8600,1)" in plan
    assert dialplan.prompt_counts(definition) == 12  # 8601 announces nothing


def test_bridge_pins_must_differ_and_be_digits() -> None:
    with pytest.raises(dialplan.DialplanError, match=r"conferences\.0"):
        dialplan.parse_definition({"conferences": [{"number": "8600", "pin": "1234", "moderator_pin": "1234"}]})
    with pytest.raises(dialplan.DialplanError, match=r"conferences\.0\.pin"):
        dialplan.parse_definition({"conferences": [{"number": "8600", "pin": "12a4"}]})


def test_settings_name_the_dialplan(tmp_path: Path) -> None:
    own = tmp_path / "county.yaml"
    own.write_text('extensions:\n  - {number: "6001", name: "县值班台"}\n', "utf-8")
    environ = {"SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path), "SWITCHBOARD_ASTERISK_DIALPLAN": str(own)}
    settings = config.load(path=tmp_path / "absent.toml", environ=environ)
    assert [e.name for e in dialplan.configured_definition(settings).extensions] == ["县值班台"]
    missing = config.load(
        path=tmp_path / "absent.toml", environ=environ | {"SWITCHBOARD_ASTERISK_DIALPLAN": "/nope.yaml"}
    )
    with pytest.raises(dialplan.DialplanError, match="/nope.yaml"):
        dialplan.configured_definition(missing)
