"""Desk phones that answer voice notifications by the hundred: one SIPp process on the trunk's port.

pjsua2 holds at most 4 calls per process and runs its media through Python; 60 calls at once would take 15
processes on two cores. SIPp takes every call in one C process, so it is the peer for many desks at once. What it
cannot do is hear: it presses 1 after a fixed time, the prompt's end as the benchmark computed it from the audio
Asterisk plays (tests/test_voice.py has phones that listen).

Each desk's behaviour is written into its number (`desk_number`), so that any driver (the product, raw AMI, a
later notices API) rings the same desks alike and one SIPp scenario serves them all: SIPp reads the ring time from
the Request-URI, rings that long (180), answers (PCMA and telephone-event 101, what the trunk endpoint's
`dtmf_mode = rfc4733` negotiates), waits `listen_ms`, then sends the pcap `dtmf_pcap` writes: half a second of
A-law silence (Asterisk's strict RTP learns a new source from the first packets and drops them meanwhile) then the
RFC 4733 events of the key, in one RTP stream. Then it waits for Asterisk's BYE. A number whose ring is
`NEVER_ANSWERS` rings until Asterisk gives up on it (Dial's timeout: CANCEL, then 487).
"""

import struct
from pathlib import Path

from tests.support.sipp import PCMA, TELEPHONE_EVENT, audio_sdp, reply

NEVER_ANSWERS = 99  # the ring written into the number of a desk nobody answers: it rings out
_PREFIX = "03516"  # Taiyuan's area code and a local exchange: every desk is reached through the trunk
_SILENCE_PACKETS = 25  # 0.5 s of A-law before the key: what strict RTP needs to learn the stream
_FROM, _TO = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])  # placeholders in the pcap: SIPp sends from its own


def desk_number(index: int, ring_seconds: int) -> str:
    """The number of desk `index` (0-999) that rings `ring_seconds` (1-98, or NEVER_ANSWERS) before answering."""
    return f"{_PREFIX}{index:03d}0{ring_seconds:02d}"


def ring_of(number: str) -> int:
    """The ring written into a desk number."""
    return int(number[-2:])


def scenario(listen_ms: int, pcap: Path) -> str:
    """The SIPp UAS scenario of every desk: ring as its number says, answer, press the key after `listen_ms`."""
    answer = reply("180 Ringing", contact=True, extra="X-Desk: [$desk] [$uri]")
    answer += '  <nop next="ringout" test="never"/>\n  <pause variable="ring_ms"/>\n'
    answer += reply("200 OK", contact=True, sdp=audio_sdp("[media_port]", dtmf=True))
    answer += f'''  <recv request="ACK" crlf="true"/>
  <pause milliseconds="{listen_ms}"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
'''
    answer += reply("200 OK", tag=False) + '  <nop next="done"/>\n'
    ringout = '  <label id="ringout"/>\n  <recv request="CANCEL"/>\n' + reply("200 OK")
    ringout += reply("487 Request Terminated", cseq="CSeq: [$cseq] INVITE") + '  <recv request="ACK"/>\n'
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="voice notification desks">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="sip:({_PREFIX}[0-9]{{3}}0([0-9]{{2}}))@" search_in="msg" check_it="true" assign_to="uri,desk,ring"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="cseq"/>
      <todouble assign_to="ring_ms" variable="ring"/>
      <test assign_to="never" variable="ring_ms" compare="equal" value="{NEVER_ANSWERS}"/>
      <multiply assign_to="ring_ms" value="1000"/>
    </action>
  </recv>
{answer}{ringout}  <label id="done"/>
</scenario>
"""


def dtmf_pcap(path: Path, digit: str = "1") -> Path:
    """A pcap SIPp replays as one RTP stream: 0.5 s of A-law silence, then `digit` as RFC 4733 events (160 ms
    pressed, the end sent three times). Addresses and ports in it are placeholders: SIPp sends from its media port
    to the address the call's SDP named."""
    event = "0123456789*#".index(digit)
    packets: list[tuple[float, bytes]] = []
    ssrc, seq, stamp = 0x5EED1234, 1000, 8000

    def rtp(payload_type: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        first = 0x80, (0x80 if marker else 0) | payload_type
        return bytes(first) + struct.pack(">HII", seq, timestamp, ssrc) + payload

    for i in range(_SILENCE_PACKETS):
        packets.append((i * 0.02, rtp(PCMA, i == 0, stamp, b"\xd5" * 160)))
        seq, stamp = seq + 1, stamp + 160
    start = _SILENCE_PACKETS * 0.02
    for i in range(8):  # 20 ms apart, durations 160 .. 1280 samples; the last one ends the key
        end = i == 7
        payload = struct.pack(">BBH", event, (0x80 if end else 0) | 10, 160 * (i + 1))
        copies = 3 if end else 1
        for _ in range(copies):  # RFC 4733 2.5.1.4: the end is sent three times, same sequence number
            packets.append((start + i * 0.02, rtp(TELEPHONE_EVENT, i == 0, stamp, payload)))
        seq += 1
    path.write_bytes(_pcap(packets))
    return path


def _pcap(packets: list[tuple[float, bytes]]) -> bytes:
    """Ethernet/IPv4/UDP frames from 10.0.0.2:6000 to 10.0.0.1:6000 with these UDP payloads and times."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for seconds, payload in packets:
        udp = struct.pack(">HHHH", 6000, 6000, 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, _FROM, _TO)
        ip = ip[:10] + struct.pack(">H", _ip_checksum(ip)) + ip[12:]
        frame = bytes(12) + b"\x08\x00" + ip + udp  # Ethernet: no addresses, IPv4
        whole, micro = int(seconds), round((seconds % 1) * 1e6)
        out.append(struct.pack("<IIII", 1_700_000_000 + whole, micro, len(frame), len(frame)) + frame)
    return b"".join(out)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(">10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
