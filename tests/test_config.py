"""Configuration: TOML plus SWITCHBOARD_* overrides, strict about names and types."""

import tomllib
from pathlib import Path

import pytest

from switchboard.core import config


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = config.load(tmp_path / "none.toml", environ={})
    assert settings.server.port == 8080
    assert settings.server.host == "127.0.0.1"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("var/switchboard.db")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[server]\nport = 9000\n[incidents]\ntimezone = "Asia/Shanghai"\n')
    settings = config.load(path, environ={"SWITCHBOARD_SERVER_PORT": "9100", "SWITCHBOARD_DATABASE_ECHO": "true"})
    assert settings.server.port == 9100
    assert settings.database.echo is True


def test_key_with_underscores_maps_to_its_section(tmp_path: Path) -> None:
    settings = config.load(tmp_path / "x.toml", environ={"SWITCHBOARD_INCIDENTS_DUE_SOON_MINUTES": "45"})
    assert settings.incidents.due_soon_minutes == 45


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ('[server]\nport = "8080"\n', "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ],
)
def test_wrong_key_or_type_is_named(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path, environ={})
    assert info.value.key == key
    assert key in str(info.value)


def test_unknown_or_malformed_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="SWITCHBOARD_SERVER_PROT"):
        config.load(tmp_path / "x.toml", environ={"SWITCHBOARD_SERVER_PROT": "1"})
    with pytest.raises(config.ConfigError, match="SWITCHBOARD_SERVER_PORT"):
        config.load(tmp_path / "x.toml", environ={"SWITCHBOARD_SERVER_PORT": "eighty"})


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[server\n")
    with pytest.raises(config.ConfigError, match="TOML"):
        config.load(path, environ={})


def test_rendered_default_is_valid_commented_toml(tmp_path: Path) -> None:
    text = config.render_default()
    assert tomllib.loads(text)["server"]["port"] == 8080
    assert "# Port of the console and API" in text
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    assert config.load(path, environ={}) == config.load(tmp_path / "absent.toml", environ={})


def test_sending_warnings_needs_the_issuer_named(tmp_path: Path) -> None:
    """With a channel configured, the shipped [warnings] example stops the start; naming the unit lets it go."""
    sms = {"SWITCHBOARD_CHANNELS_SMS_HOST": "smsc.example.cn"}
    with pytest.raises(config.ConfigError) as raised:
        config.load(tmp_path / "x.toml", environ=sms)
    assert "warnings.unit_area" in str(raised.value) and "[warnings]" in str(raised.value)
    named = config.load(tmp_path / "x.toml", environ=sms | {"SWITCHBOARD_WARNINGS_UNIT_AREA": "140100"})
    assert named.warnings.unit_area == "140100"
