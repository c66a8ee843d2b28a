"""One real Asterisk per test run: provisioned (cached after the first time), configured from the default
dialplan with free ports, its var dir under pytest's tmp dir. Use it as the `asterisk` fixture."""

import random
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from sip import dialplan
from sip.engine import Engine
from sip.provision import AsteriskRuntime, ProvisionError, provision
from switchboard.core import config

FALLBACK_MOBILE = "13800000000"
"""The on-duty officer's mobile the duty ring group falls back to (reached through the trunk)."""
BRIDGE_PIN, MODERATOR_PIN = "1234", "9876"
"""The PINs of every conference bridge of the test engine."""
FAX_TRUNK = "faxloop"
"""A trunk to this same Asterisk's second SIP transport (the far end of the fax tests): numbers dialled through it
land in `from-trunk`, so the dialplan's fax numbers answer them with ReceiveFAX."""
FAX_NUMBERS = {"t38": "8700", "g711": "8701"}
"""The far end's fax numbers: 8700 asks for T.38, 8701 (audio_only) never does, so the fax stays on G.711."""


@dataclass
class AsteriskHarness:
    settings: config.Settings
    engine: Engine
    runtime: AsteriskRuntime
    ami_host: str
    ami_port: int
    ami_username: str
    ami_secret: str
    sip_host: str
    sip_port: int
    trunk_port: int
    """UDP port of "the outside world": the trunk's peer (bind a SIP agent here to act as the PSTN side)."""
    extensions: dict[str, str] = field(default_factory=dict)
    """Desk number -> SIP password (register as number@sip_host:sip_port)."""
    hotlines: list[str] = field(default_factory=list)
    fallback_mobile: str = FALLBACK_MOBILE
    boot_seconds: float = 0.0
    fax_trunk: str = FAX_TRUNK
    fax_numbers: dict[str, str] = field(default_factory=lambda: dict(FAX_NUMBERS))


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_sip_port() -> int:
    """A port free for both UDP and TCP (Asterisk binds both transports to it)."""
    for _ in range(50):
        port = _free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free SIP port")


def _say(message: str) -> None:
    print(f"[asterisk] {message}", file=sys.__stderr__, flush=True)


def fax_far_end(engine: Engine, sip_port: int, port: int) -> None:
    """The far end of the fax loop: a second transport on `port`, where INVITEs the `faxloop` trunk sends from the
    main transport arrive as endpoint faxloop-far (T.38 capable) into `from-trunk`."""
    engine.layout.etc.mkdir(parents=True, exist_ok=True)
    (engine.layout.etc / "pjsip_local.conf").write_text(
        f"""[transport-faxloop]
type = transport
protocol = udp
bind = 127.0.0.1:{port}

[faxloop-far]
type = endpoint
context = from-trunk
transport = transport-faxloop
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes
t38_udptl = yes
t38_udptl_ec = redundancy

[faxloop-far]
type = identify
endpoint = faxloop-far
match = 127.0.0.1:{sip_port}
"""
    )


@pytest_asyncio.fixture(scope="session")
async def asterisk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsteriskHarness]:
    var_dir: Path = tmp_path_factory.mktemp("asterisk")
    sip_port = _free_sip_port()
    ami_port = _free_port(socket.SOCK_STREAM)
    trunk_port = _free_port(socket.SOCK_DGRAM)
    fax_loop_port = _free_port(socket.SOCK_DGRAM)
    base = random.Random().randrange(30000, 39000, 1000)  # RTP and UDPTL apart from pjsua's default base 4000
    settings = config.load(
        path=var_dir / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
            "SWITCHBOARD_ASTERISK_SIP_HOST": "127.0.0.1",
            "SWITCHBOARD_ASTERISK_SIP_PORT": str(sip_port),
            "SWITCHBOARD_ASTERISK_AMI_PORT": str(ami_port),
            "SWITCHBOARD_ASTERISK_RTP_PORT_START": str(base),
            "SWITCHBOARD_ASTERISK_RTP_PORT_END": str(base + 399),
            "SWITCHBOARD_ASTERISK_UDPTL_PORT_START": str(base + 400),
            "SWITCHBOARD_ASTERISK_UDPTL_PORT_END": str(base + 599),
        },
    )
    last = [0.0]

    def progress(step: str, detail: str) -> None:
        if step in ("check", "done") or time.monotonic() - last[0] > 2:  # a line every 2 s while building
            last[0] = time.monotonic()
            _say(f"{step}: {detail}")

    started = time.monotonic()
    try:
        runtime = await provision(settings, progress)
    except ProvisionError as exc:
        pytest.fail(f"Asterisk 无法准备（先运行 scripts/setup）：{exc}")
    _say(f"runtime ready in {time.monotonic() - started:.1f} s")

    definition = dialplan.load_definition()
    trunks = [t.model_copy(update={"host": "127.0.0.1", "port": trunk_port}) for t in definition.trunks]
    trunks.append(dialplan.Trunk(name=FAX_TRUNK, host="127.0.0.1", port=fax_loop_port))
    fax = [*definition.fax, dialplan.FaxNumber(number=FAX_NUMBERS["g711"], name="G711", audio_only=True)]
    # Duty groups ring the desks for 4 s before the fallback mobile, so that path is testable quickly.
    groups = [g.model_copy(update={"timeout": 4}) for g in definition.ring_groups]
    conferences = [
        c.model_copy(update={"pin": BRIDGE_PIN, "moderator_pin": MODERATOR_PIN}) for c in definition.conferences
    ]
    definition = definition.model_copy(
        update={"trunks": trunks, "ring_groups": groups, "conferences": conferences, "fax": fax}
    )
    engine = Engine(settings, runtime, definition, fallback={"duty": FALLBACK_MOBILE})
    fax_far_end(engine, sip_port, fax_loop_port)
    started = time.monotonic()
    await engine.start(timeout=30)
    boot = time.monotonic() - started
    _say(f"Asterisk {runtime.version} fully booted in {boot:.2f} s (SIP {sip_port}, AMI {ami_port})")
    try:
        yield AsteriskHarness(
            settings=settings,
            engine=engine,
            runtime=runtime,
            ami_host="127.0.0.1",
            ami_port=ami_port,
            ami_username=settings.asterisk.ami_username,
            ami_secret=dialplan.ami_secret(settings),
            sip_host="127.0.0.1",
            sip_port=sip_port,
            trunk_port=trunk_port,
            extensions=dialplan.phone_secrets(settings, definition),
            hotlines=[h.number for h in definition.hotlines],
            boot_seconds=boot,
        )
    finally:
        await engine.stop()
