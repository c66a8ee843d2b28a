"""The Janus configuration Switchboard writes (no Janus needed): only VideoRoom and the Unix-socket API are loaded
(no network API for anyone to reach), the settings reach the right keys, strings are quoted safely, and the
command runs in the namespace."""

from pathlib import Path

from conference.video.engine import Engine, Layout, admin_key, render
from switchboard.core import config


def test_render_and_command(tmp_path: Path) -> None:
    settings = config.load(
        path=tmp_path / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path),
            "SWITCHBOARD_JANUS_INTERFACE": "eth1",
            "SWITCHBOARD_JANUS_ADDRESS": "192.0.2.7",
            "SWITCHBOARD_JANUS_NETNS": "/run/netns/video",
            "SWITCHBOARD_JANUS_API_SOCKET": str(tmp_path / 'a" b' / "api.sock"),
            "SWITCHBOARD_JANUS_RTP_PORT_START": "40000",
            "SWITCHBOARD_JANUS_RTP_PORT_END": "40999",
            "SWITCHBOARD_JANUS_PHONE_ADDRESS": "10.98.1.2",
        },
    )
    layout = Layout.for_settings(settings)
    render(settings, layout)
    plugins = sorted(p.name for p in (layout.base / "plugins").iterdir())
    assert plugins == ["libjanus_audiobridge.so", "libjanus_videoroom.so"]
    assert [p.name for p in (layout.base / "transports").iterdir()] == ["libjanus_pfunix.so"]
    assert not (layout.conf_dir / "janus.transport.http.jcfg").exists()
    janus = (layout.conf_dir / "janus.jcfg").read_text()
    assert 'rtp_port_range = "40000-40999"' in janus and 'ice_enforce_list = "eth1"' in janus
    videoroom = (layout.conf_dir / "janus.plugin.videoroom.jcfg").read_text()
    key = admin_key(settings)
    assert f'admin_key = "{key}"' in videoroom and len(key) >= 24 and admin_key(settings) == key
    assert (layout.admin_key_file.stat().st_mode & 0o777) == 0o600
    audiobridge = (layout.conf_dir / "janus.plugin.audiobridge.jcfg").read_text()
    assert f'admin_key = "{key}"' in audiobridge and "lock_rtp_forward = true" in audiobridge
    assert 'local_ip = "10.98.1.2"' in audiobridge  # the phones' plain RTP: where Asterisk sends
    pfunix = (layout.conf_dir / "janus.transport.pfunix.jcfg").read_text()
    assert 'path = "' + str(layout.api_socket).replace('"', '\\"') + '"' in pfunix  # quoted safely
    command = Engine(settings).command()
    assert command[:3] == ["nsenter", "--net=/run/netns/video", "--"]
    assert command[command.index("-E") + 1] == "eth1" and command[command.index("-i") + 1] == "192.0.2.7"
