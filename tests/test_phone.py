"""The pjsua2 phone agent (tests/support/phone.py) against real peers without Asterisk: another phone process, and SIPp.

Each phone is a process of its own (pjsua2 holds at most 4 calls per process), driven over JSON lines.
"""

import asyncio
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import tones
from tests.support.phone_client import PhoneError, PhoneProcess
from tests.support.wait import until

pytestmark = pytest.mark.timeout(30)

SIPP_PCAPS = Path("/usr/share/sip-tester")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def udp_bound(port: int) -> bool:
    """Whether something (SIPp) listens on 127.0.0.1:`port`, asked of the kernel without touching the port."""
    local = f"0100007F:{port:04X}"
    return any(line.split()[1] == local for line in Path("/proc/net/udp").read_text().splitlines()[1:])


async def sipp_listening(port: int) -> None:
    await until(lambda: udp_bound(port), timeout=10, what=f"SIPp to bind UDP port {port}")


def sipp() -> str:
    path = shutil.which("sipp")
    assert path, "SIPp is missing: install the Debian package sip-tester (scripts/setup does)"
    return path


_spawned: list[PhoneProcess] = []


def phone(tmp_path: Path, name: str) -> PhoneProcess:
    """A phone whose pjsua log goes to tmp_path/NAME.log; it must have exited cleanly by the end of the test."""
    process = PhoneProcess(log_path=tmp_path / f"{name}.log")
    _spawned.append(process)
    return process


@pytest.fixture(autouse=True)
def phones_exit_cleanly() -> Iterator[None]:
    _spawned.clear()
    yield
    for process in _spawned:
        assert process.returncode == 0, f"a phone exited with {process.returncode}: see {process.log_path}"


async def connected_pair(a: PhoneProcess, b: PhoneProcess) -> tuple[str, str]:
    """alice (on a) calls bob (on b), who answers by hand; returns both sides' call ids once confirmed."""
    await a.command("account", name="alice")
    bob = await b.command("account", name="bob")
    call_a = (await a.command("call", uri=bob["contact"]))["call"]
    call_b = (await b.wait_for("incoming_call", account="bob", timeout=5))["call"]
    await a.wait_for("call_state", call=call_a, state="early", timeout=5)  # manual policy: it rings
    await b.command("answer", call=call_b)
    await a.wait_for("call_state", call=call_a, state="confirmed", timeout=5)
    await b.wait_for("call_state", call=call_b, state="confirmed", timeout=5)
    return call_a, call_b


async def test_tones_cross_both_ways_without_echo(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a, phone(tmp_path, "b") as b:
        await a.command("account", name="alice")
        bob = await b.command("account", name="bob", headers=["X-Incident-Id"])
        await b.command("answer", account="bob", mode="auto", delay_ms=300)
        call_a = (await a.command("call", uri=bob["contact"], headers={"X-Incident-Id": "INC-42"}))["call"]
        incoming = await b.wait_for("incoming_call", timeout=5)
        call_b = incoming["call"]
        assert incoming["caller_number"] == "alice"
        assert incoming["headers"] == {"X-Incident-Id": "INC-42"}
        # Tone and recorder asked for before the answer: they are connected when the media comes up.
        await a.command("play_tone", call=call_a, freq=700)
        await a.command("record", call=call_a, path=str(tmp_path / "a.wav"))
        await b.command("play_tone", call=call_b, freq=1300)
        await b.command("record", call=call_b, path=str(tmp_path / "b.wav"))
        await a.wait_for("call_state", call=call_a, state="early", timeout=5)
        await a.wait_for("call_state", call=call_a, state="confirmed", timeout=5)
        assert (await a.wait_for("media", call=call_a, timeout=5))["codec"] == "PCMU"
        await b.wait_for("media", call=call_b, timeout=5)
        await until(
            lambda: (
                tones.tone_seconds(tones.recorded_so_far(tmp_path / "a.wav"), 1300) >= 1.0
                and tones.tone_seconds(tones.recorded_so_far(tmp_path / "b.wav"), 700) >= 1.0
            ),
            timeout=15,
            what="each phone to hear the other's tone for a second",
        )
        await a.command("hangup", call=call_a)
        await a.wait_for("call_state", call=call_a, state="disconnected", timeout=5)
        await b.wait_for("call_state", call=call_b, state="disconnected", timeout=5)
        await a.wait_for("recording", call=call_a, state="complete", timeout=5)
        await b.wait_for("recording", call=call_b, state="complete", timeout=5)

    for path, heard, own in ((tmp_path / "a.wav", 1300, 700), (tmp_path / "b.wav", 700, 1300)):
        assert tones.loud_seconds(path) >= 1.0, path
        shares = tones.tone_shares(path, [heard, own])
        assert shares[heard] > 0.9, (path, shares)
        assert shares[own] < 0.01, (path, shares)
        assert tones.tone_present(path, heard) and not tones.tone_present(path, own)
        assert abs(tones.dominant_frequencies(path, count=1)[0][0] - heard) <= 5


async def test_dtmf_digits_arrive(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a, phone(tmp_path, "b") as b:
        call_a, call_b = await connected_pair(a, b)
        await a.wait_for("media", call=call_a, timeout=5)
        await b.wait_for("media", call=call_b, timeout=5)
        await a.command("dtmf", call=call_a, digits="159*#0")
        received = [(await b.wait_for("dtmf", call=call_b, timeout=5))["digit"] for _ in range(6)]
        assert "".join(received) == "159*#0"
        await b.command("dtmf", call=call_b, digits="7")
        assert (await a.wait_for("dtmf", call=call_a, timeout=5))["digit"] == "7"
        await b.command("hangup", call=call_b)
        assert (await a.wait_for("call_state", call=call_a, state="disconnected", timeout=5))["code"] == 200


async def test_busy_is_486(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a, phone(tmp_path, "b") as b:
        await a.command("account", name="alice")
        bob = await b.command("account", name="bob")
        await b.command("answer", account="bob", mode="busy")
        call_a = (await a.command("call", uri=bob["contact"]))["call"]
        ended = await a.wait_for("call_state", call=call_a, state="disconnected", timeout=5)
        assert ended["code"] == 486, ended
        assert "busy" in ended["reason"].lower()
        assert not a.find("call_state", call=call_a, state="confirmed")
        call_b = (await b.wait_for("incoming_call", timeout=5))["call"]
        assert (await b.wait_for("call_state", call=call_b, state="disconnected", timeout=5))["code"] == 486


async def test_no_answer_rings_then_cancel_is_487(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a, phone(tmp_path, "b") as b:
        await a.command("account", name="alice")
        bob = await b.command("account", name="bob")
        await b.command("answer", account="bob", mode="never")
        call_a = (await a.command("call", uri=bob["contact"]))["call"]
        ringing = await a.wait_for("call_state", call=call_a, state="early", timeout=5)
        assert ringing["code"] == 180
        call_b = (await b.wait_for("incoming_call", timeout=5))["call"]  # it rings at the far end
        await a.command("hangup", call=call_a)  # the caller gives up: CANCEL
        ended = await a.wait_for("call_state", call=call_a, state="disconnected", timeout=5)
        assert ended["code"] == 487, ended
        assert (await b.wait_for("call_state", call=call_b, state="disconnected", timeout=5))["code"] == 487
        assert not b.find("call_state", call=call_b, state="confirmed")


async def test_four_calls_in_one_process_and_the_fifth_is_refused(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a, phone(tmp_path, "b") as b:
        await a.command("account", name="alice")
        bob = await b.command("account", name="bob")
        await b.command("answer", account="bob", mode="auto")
        calls = [(await a.command("call", uri=bob["contact"]))["call"] for _ in range(4)]
        for call in calls:
            await a.wait_for("call_state", call=call, state="confirmed", timeout=5)
        with pytest.raises(PhoneError, match="at most 4 calls") as refused:
            await a.command("call", uri=bob["contact"])
        assert refused.value.field == "call"
        status = await a.command("status")  # still alive, still holding its calls
        assert sorted(status["calls"].values()) == ["confirmed"] * 4
        await a.command("hangup", call=calls[0])
        await a.wait_for("call_state", call=calls[0], state="disconnected", timeout=5)
        fifth = (await a.command("call", uri=bob["contact"]))["call"]  # a freed slot is usable again
        await a.wait_for("call_state", call=fifth, state="confirmed", timeout=5)
    assert a.returncode == 0 and b.returncode == 0


async def test_bad_commands_get_errors_naming_the_field(tmp_path: Path) -> None:
    async with phone(tmp_path, "a") as a:
        cases = [
            ({"cmd": "call"}, "account"),
            ({"cmd": "dance"}, "cmd"),
            ({"cmd": "account"}, "name"),
            ({"cmd": "account", "name": "x", "port": "five"}, "port"),
            ({"cmd": "account", "name": "x", "port": 70000}, "port"),
        ]
        for fields, field in cases:
            reply = await a.command(fields.pop("cmd"), check=False, **fields)
            assert not reply["ok"] and reply["field"] == field, reply
        await a.command("account", name="alice")
        for fields, field in [
            ({"uri": "not a uri"}, "uri"),
            ({"uri": "sip:x@127.0.0.1", "headers": {"Bad Header": "v"}}, "headers"),
        ]:
            reply = await a.command("call", check=False, **fields)
            assert not reply["ok"] and reply["field"] == field, reply
        for cmd, fields, field in [
            ("hangup", {"call": "c99"}, "call"),
            ("play_tone", {"call": "c99", "freq": 700}, "call"),
            ("answer", {"account": "alice", "mode": "maybe"}, "mode"),
            ("dtmf", {"call": "c99", "digits": "1"}, "call"),
        ]:
            reply = await a.command(cmd, check=False, **fields)
            assert not reply["ok"] and reply["field"] == field, reply
        a.process.stdin.write(b"not json\n")
        assert (await a.command("status"))["accounts"] == {"alice": {"mode": "manual"}}
        a.process.stdin.close()  # EOF ends the phone cleanly
        assert await asyncio.wait_for(a.process.wait(), 5) == 0


async def test_phone_calls_sipp_uas(tmp_path: Path) -> None:
    port = free_udp_port()
    server = await asyncio.create_subprocess_exec(
        sipp(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin", "-timeout", "20s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        async with phone(tmp_path, "a") as a:
            await a.command("account", name="alice")
            await sipp_listening(port)
            call = (await a.command("call", uri=f"sip:service@127.0.0.1:{port}"))["call"]
            await a.wait_for("call_state", call=call, state="confirmed", timeout=5)
            assert (await a.wait_for("media", call=call, timeout=5))["codec"] == "PCMU"
            await a.command("hangup", call=call)
            await a.wait_for("call_state", call=call, state="disconnected", timeout=5)
        rc = await asyncio.wait_for(server.wait(), 10)
        assert rc == 0, f"SIPp UAS failed ({rc}): {(await server.stderr.read()).decode()[-2000:]}"
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def test_sipp_uac_calls_phone_with_g711_audio_and_dtmf(tmp_path: Path) -> None:
    """SIPp's uac_pcap scenario plays Debian's packaged PCMA capture (8 s), then the RFC 4733 digit 1."""
    assert (SIPP_PCAPS / "g711a.pcap").is_file(), "sip-tester's pcaps are missing (/usr/share/sip-tester)"
    os.symlink(SIPP_PCAPS, tmp_path / "pcap")  # the scenario names them pcap/<file>
    async with phone(tmp_path, "b") as b:
        bob = await b.command("account", name="bob")
        await b.command("answer", account="bob", mode="auto")
        client = await asyncio.create_subprocess_exec(
            sipp(), "-sn", "uac_pcap", f"127.0.0.1:{bob['port']}", "-s", "bob", "-i", "127.0.0.1",
            "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-m", "1", "-nostdin", "-timeout", "25s",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        try:
            incoming = await b.wait_for("incoming_call", timeout=5)
            assert incoming["caller_number"] == "sipp"
            call = incoming["call"]
            await b.command("record", call=call, path=str(tmp_path / "sipp.wav"))
            assert (await b.wait_for("media", call=call, timeout=5))["codec"] == "PCMA"
            assert (await b.wait_for("dtmf", call=call, timeout=15))["digit"] == "1"
            ended = await b.wait_for("call_state", call=call, state="disconnected", timeout=5)
            assert ended["code"] == 200
            await b.wait_for("recording", call=call, timeout=5)
            rc = await asyncio.wait_for(client.wait(), 10)
            assert rc == 0, f"SIPp UAC failed ({rc}): {(await client.stderr.read()).decode()[-2000:]}"
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
    assert tones.loud_seconds(tmp_path / "sipp.wav") > 3.0  # the capture's audio arrived


REGISTRAR_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="registrar asking for digest credentials">
  <recv request="REGISTER"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="switchboard", nonce="47ebe028cda119c35d4877b383027d28da013815"
Content-Length: 0
]]></send>
  <recv request="REGISTER">
    <action><verifyauth assign_to="valid" username="8001" password="s3cret"/></action>
  </recv>
  <nop hide="true" test="valid" next="accept"/>
  <send next="done"><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <label id="accept"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=300
Content-Length: 0
]]></send>
  <label id="done"/>
</scenario>
"""


@pytest.mark.parametrize(("password", "code"), [("s3cret", 200), ("wrong", 403)])
async def test_registers_with_digest_credentials(tmp_path: Path, password: str, code: int) -> None:
    """SIPp as a registrar that challenges and checks the digest (the way Asterisk's endpoints will)."""
    (tmp_path / "registrar.xml").write_text(REGISTRAR_SCENARIO)
    port = free_udp_port()
    registrar = await asyncio.create_subprocess_exec(
        sipp(), "-sf", "registrar.xml", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin", "-timeout", "10s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        async with phone(tmp_path, "a") as a:
            await sipp_listening(port)
            await a.command("account", name="desk", registrar=f"127.0.0.1:{port}", user="8001", password=password)
            state = await a.wait_for("registration", account="desk", timeout=5)
            assert state["code"] == code, state
            assert state["registered"] is (code == 200)
        assert await asyncio.wait_for(registrar.wait(), 5) == 0  # SIPp ran its scenario to the end
    finally:
        if registrar.returncode is None:
            registrar.kill()
            await registrar.wait()


def test_tone_detection_on_arrays_survives_silence_and_g711() -> None:
    rate = 8000
    t = np.arange(3 * rate) / rate
    signal = 0.3 * np.sin(2 * np.pi * 700 * t) + 0.2 * np.sin(2 * np.pi * 1300 * t)
    signal[: 2 * rate] = 0.0  # two seconds of silence before the media flows
    mu = 255.0  # G.711 mu-law round trip, 8-bit
    coded = np.round(np.sign(signal) * np.log1p(mu * np.abs(signal)) / np.log1p(mu) * 127) / 127
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    pcm = np.round(decoded * 32767).astype(np.int16)
    shares = tones.tone_shares(pcm, [700, 1300, 1000], rate=rate)
    assert shares[700] == pytest.approx(0.69, abs=0.03) and shares[1300] == pytest.approx(0.31, abs=0.03)
    assert shares[1000] < 0.01
    assert tones.tone_present(pcm, 700, rate=rate) and tones.tone_present(pcm, 1300, rate=rate)
    assert not tones.tone_present(pcm, 1000, rate=rate)
    assert not tones.tone_present(pcm, 700, rate=rate, end=2.0)  # silence alone holds no tone
    assert [round(f) for f, _ in tones.dominant_frequencies(pcm, rate=rate, count=2)] == [700, 1300]
