"""The local Asterisk against reality: provisioned root, boot, CLI, AMI login, SIP, reload, and a hostile
caller name on a live call. One engine per test run (tests/support/asterisk_fixture.py)."""

import asyncio
import base64
import socket
import uuid

import pytest
from panoramisk.message import Message

from sip import dialplan
from sip.ami import AmiSession
from sip.dialing import CALL_ID, DESK_LEG, DIAL_LEG, DISPATCH_CONTEXT, RING_TIMEOUT, TARGETS, inherited
from sip.engine import Engine
from sip.provision import find_runtime
from switchboard.core import config
from switchboard.core.ids import new_id
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.wait import until

pytestmark = pytest.mark.timeout(120)


async def test_boots_fully_and_reports_status(asterisk: AsteriskHarness) -> None:
    # How fast it boots (0.5 s on a quiet machine) is a benchmark's figure; a busy machine must not fail this.
    status = await asterisk.engine.status()
    assert status.running and status.fully_booted
    assert status.pid == asterisk.engine.pid()
    assert status.uptime_seconds is not None
    assert asterisk.runtime.major >= 22


async def test_core_show_version_says_22(asterisk: AsteriskHarness) -> None:
    code, out = await asterisk.engine.cli("core show version")
    assert code == 0
    assert out.startswith("Asterisk 22.")


async def test_start_twice_is_harmless(asterisk: AsteriskHarness) -> None:
    pid = asterisk.engine.pid()
    status = await asterisk.engine.start()
    assert status.pid == pid


def test_cached_runtime_is_found_without_building(asterisk: AsteriskHarness) -> None:
    runtime = find_runtime(asterisk.settings)
    assert runtime is not None and runtime.binary == asterisk.runtime.binary


async def _ami(asterisk: AsteriskHarness, secret: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    reader, writer = await asyncio.open_connection(asterisk.ami_host, asterisk.ami_port)
    banner = await reader.readline()
    assert banner.startswith(b"Asterisk Call Manager/")
    writer.write(f"Action: Login\r\nUsername: {asterisk.ami_username}\r\nSecret: {secret}\r\n\r\n".encode())
    await writer.drain()
    response = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    return reader, writer, response


async def test_ami_accepts_the_generated_secret_only(asterisk: AsteriskHarness) -> None:
    secret_file = asterisk.settings.var_path / "asterisk" / "ami_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    _, writer, response = await _ami(asterisk, asterisk.ami_secret)
    writer.close()
    assert "Response: Success" in response
    _, writer, response = await _ami(asterisk, "wrong-secret")
    writer.close()
    assert "Response: Error" in response


def _sip_request(method: str, uri: str, port: int, call_id: str, branch: str, extra: str = "", body: str = "") -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"Contact: <sip:outside@127.0.0.1:{port}>\r\n"
        f"{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def _outside_socket(asterisk: AsteriskHarness) -> socket.socket:
    """A raw UDP socket on the trunk's peer port: Asterisk identifies what it sends as the trunk."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", asterisk.trunk_port))
    sock.settimeout(5)
    return sock


def _receive(sock: socket.socket, want: str) -> str:
    """Next SIP message whose first line contains `want` (Asterisk's own requests to the trunk are skipped)."""
    while True:
        text = sock.recv(65535).decode(errors="replace")
        if want in text.split("\r\n", 1)[0]:
            return text


def test_sip_port_answers_options(asterisk: AsteriskHarness) -> None:
    with _outside_socket(asterisk) as sock:
        uri = f"sip:12350@127.0.0.1:{asterisk.sip_port}"
        tag = uuid.uuid4().hex[:8]
        request = _sip_request(
            "OPTIONS", uri, asterisk.trunk_port, uuid.uuid4().hex, "z9hG4bK" + uuid.uuid4().hex,
            f"From: <sip:probe@127.0.0.1>;tag={tag}\r\nCSeq: 1 OPTIONS\r\n",
        )  # fmt: skip
        sock.sendto(request, ("127.0.0.1", asterisk.sip_port))
        assert _receive(sock, "SIP/2.0").startswith("SIP/2.0 200")


async def test_reload_takes_a_new_extension_without_restart(asterisk: AsteriskHarness) -> None:
    engine: Engine = asterisk.engine
    pid = engine.pid()
    original = engine.definition
    added = dialplan.Extension(number="8010", name="新增分机")
    engine.definition = original.model_copy(update={"extensions": [*original.extensions, added]})
    try:
        changed = await engine.reload()
        assert {"pjsip.conf", "extensions.conf"} <= set(changed)
        _, show = await engine.cli("dialplan show 8010@internal")
        assert "PJSIP/8010" in show

        async def endpoint_shown() -> str | None:  # res_pjsip applies its reload asynchronously
            _, endpoint = await engine.cli("pjsip show endpoint 8010")
            return endpoint if "Unable to find" not in endpoint and "8010" in endpoint else None

        endpoint = await until(endpoint_shown, timeout=20, what="endpoint 8010 after the reload", interval=0.1)
        assert "8010-auth" in endpoint
        assert engine.pid() == pid
    finally:
        engine.definition = original
        await engine.reload()


async def test_ami_passes_only_the_events_of_the_channels_followed(asterisk: AsteriskHarness) -> None:
    """manager.conf's filters: two Local channels through the dispatch loop to the echo test, one named as a voice
    call's legs (-desk / -dial), one as a convene leg (-r1 / -r1-d). The voice call's Newchannel and DialBegin pass;
    the convene leg's do not, yet its UserEvents do; no event outside the list passes, nor any other Newchannel."""
    ami = AmiSession(asterisk.ami_host, asterisk.ami_port, asterisk.ami_username, asterisk.ami_secret)
    events: list[Message] = []
    ami.on_event(events.append)
    ami.start()
    voice, convene = new_id(), new_id()
    try:
        await ami.wait_up(15)
        for call_id, legs in ((voice, (DESK_LEG, DIAL_LEG)), (convene, ("-r1", "-r1-d"))):
            await ami.action(
                {
                    "Action": "Originate",
                    "Channel": f"Local/s@{DISPATCH_CONTEXT}/n",
                    "Application": "Wait",
                    "Data": "1",
                    "Variable": [
                        inherited(CALL_ID, call_id),
                        inherited(TARGETS, f"Local/{asterisk.engine.definition.echo_test}@internal"),
                        inherited(RING_TIMEOUT, 5),
                    ],
                    "Async": "true",
                    "ChannelId": f"{call_id}{legs[0]}",
                    "OtherChannelId": f"{call_id}{legs[1]}",
                }
            )

        def gone(uniqueid: str) -> bool:
            return any(e.get("Event") == "Hangup" and e.get("Uniqueid") == uniqueid for e in events)

        await until(
            lambda: gone(f"{voice}{DIAL_LEG}") and gone(f"{convene}-r1-d"),
            timeout=20,
            what=lambda: f"both dialling halves to hang up; events: {[e.get('Event') for e in events]}",
        )
    finally:
        await ami.stop()
    names = {str(e.get("Event")) for e in events}
    assert names <= {*dialplan.AMI_EVENTS, "Newchannel"}, names
    uniqueids = {name: {str(e.get("Uniqueid")) for e in events if e.get("Event") == name} for name in names}
    assert {f"{voice}{DESK_LEG}", f"{voice}{DIAL_LEG}"} <= uniqueids["Newchannel"]
    assert all(u.endswith((DESK_LEG, DIAL_LEG)) for u in uniqueids["Newchannel"]), uniqueids["Newchannel"]
    assert f"{voice}{DIAL_LEG}" in uniqueids["DialBegin"] and f"{voice}{DIAL_LEG}" in uniqueids["DialEnd"]
    assert not any(u.startswith(convene) for u in uniqueids["DialBegin"] | uniqueids["DialEnd"])
    assert any(e.get("UserEvent") == "SwitchboardAttempt" and e.get("CallId") == convene for e in events)


HOSTILE_NAME = 'x"),Hangup(),Set(GLOBAL(PWNED)=1);${SET(GLOBAL(PWNED)=2)}'


async def test_hostile_caller_name_is_carried_not_executed(asterisk: AsteriskHarness) -> None:
    """An inbound hotline call whose From display name is dialplan syntax: the control plane gets the name
    intact (base64 in the UserEvent), the dialplan goes on to ring the duty group, nothing is executed.
    Raw UDP rather than SIPp: the test needs to CANCEL at a moment chosen by the AMI events it watches."""
    engine: Engine = asterisk.engine
    reader, writer, response = await _ami(asterisk, asterisk.ami_secret)
    assert "Success" in response
    uri = f"sip:{asterisk.hotlines[0]}@127.0.0.1:{asterisk.sip_port}"
    call_id, branch, tag = uuid.uuid4().hex, "z9hG4bK" + uuid.uuid4().hex, uuid.uuid4().hex[:8]
    escaped = HOSTILE_NAME.replace("\\", "\\\\").replace('"', '\\"')
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 39990 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    from_header = f'From: "{escaped}" <sip:13912345678@127.0.0.1>;tag={tag}\r\n'
    with _outside_socket(asterisk) as sock:
        invite = _sip_request(
            "INVITE", uri, asterisk.trunk_port, call_id, branch,
            from_header + "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n", sdp,
        )  # fmt: skip
        sock.sendto(invite, ("127.0.0.1", asterisk.sip_port))
        events: list[dict[str, str]] = []
        try:
            while not any(e.get("Event") == "DialBegin" for e in events):
                block = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode(errors="replace")
                events.append(dict(line.split(": ", 1) for line in block.strip().splitlines() if ": " in line))
        finally:
            cancel = _sip_request(
                "CANCEL", uri, asterisk.trunk_port, call_id, branch, from_header + "CSeq: 1 CANCEL\r\n"
            )
            sock.sendto(cancel, ("127.0.0.1", asterisk.sip_port))
            final = await asyncio.to_thread(_receive, sock, "SIP/2.0 4")  # 487 Request Terminated (or 4xx)
            to_line = next(line for line in final.split("\r\n") if line.lower().startswith("to:"))
            ack = _sip_request("ACK", uri, asterisk.trunk_port, call_id, branch, from_header + "CSeq: 1 ACK\r\n")
            sock.sendto(ack.replace(f"To: <{uri}>".encode(), to_line.encode()), ("127.0.0.1", asterisk.sip_port))
            writer.close()
    inbound = next(e for e in events if e.get("UserEvent") == "SwitchboardInbound")
    # Literal, not executed (Asterisk keeps the SIP quoted-pair backslash before the quote).
    assert base64.b64decode(inbound["CallerNameB64"]).decode().replace('\\"', '"') == HOSTILE_NAME
    assert inbound["CallerNum"] == "13912345678"
    assert inbound["Hotline"] == asterisk.hotlines[0]
    dial = next(e for e in events if e.get("Event") == "DialBegin")
    assert dial.get("DestChannel", "").startswith("PJSIP/") or dial.get("DialString")
    _, globals_ = await engine.cli("dialplan show globals")
    assert "PWNED" not in globals_


async def test_stop_stops_it_and_a_stale_pid_file_is_handled(asterisk: AsteriskHarness, tmp_path) -> None:
    """A second, throwaway engine (the shared one keeps running for the other tests)."""
    from tests.support.asterisk_fixture import _free_port, _free_sip_port

    settings = asterisk.settings.model_copy(
        update={
            "paths": asterisk.settings.paths.model_copy(update={"var_dir": str(tmp_path)}),
            "asterisk": asterisk.settings.asterisk.model_copy(
                update={"sip_port": _free_sip_port(), "ami_port": _free_port(socket.SOCK_STREAM)}
            ),
        }
    )
    engine = Engine(settings, asterisk.runtime, dialplan.Definition(echo_test="8999"))
    engine.pid_file.parent.mkdir(parents=True, exist_ok=True)
    engine.pid_file.write_text("999999\n")  # stale: no such process
    assert engine.pid() is None and not engine.pid_file.exists()
    status = await engine.start()
    assert status.running and status.pid != asterisk.engine.pid()
    assert await engine.stop() is True
    assert not (await engine.status()).running
    assert await engine.stop() is False


def test_a_root_without_its_stamp_is_not_used(tmp_path, monkeypatch) -> None:
    """An interrupted build (no stamp file) is never mistaken for a finished one."""
    monkeypatch.setattr("shutil.which", lambda name: None)  # no system Asterisk either
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    settings = config.load(tmp_path / "absent.toml", environ={"SWITCHBOARD_ASTERISK_ROOT_DIR": str(root)})
    assert find_runtime(settings) is None
    (root / ".switchboard-provisioned").write_text('{"version": "22.10.1"}')
    runtime = find_runtime(settings)
    assert runtime is not None and runtime.major == 22 and runtime.root == root
