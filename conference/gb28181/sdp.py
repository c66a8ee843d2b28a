"""The session descriptions of GB/T 28181-2016 section 9.2 and Appendix F: a live-view offer (`s=Play`, PS on
payload type 96, `y=` the 10-digit SSRC, `a=setup` for RTP over TCP per RFC 4571) and the device's answer read."""

from dataclasses import dataclass

# Ours, as the offer says it: tcp_passive, we listen and the device connects (a=setup:passive); tcp_active, the
# device listens on the address of its answer and we connect (a=setup:active).
TRANSPORTS = ("udp", "tcp_passive", "tcp_active")


def ssrc(domain: str, sequence: int, playback: bool = False) -> str:
    """First digit 0 live / 1 playback, then digits 4-8 of the SIP domain id, then a 4-digit sequence."""
    return f"{1 if playback else 0}{domain[3:8]}{sequence % 10000:04d}"


def offer(channel_id: str, host: str, port: int, ssrc_value: str, transport: str = "udp") -> str:
    proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
    lines = [
        "v=0", f"o={channel_id} 0 0 IN IP4 {host}", "s=Play", f"c=IN IP4 {host}", "t=0 0",
        f"m=video {port} {proto} 96 98 97", "a=recvonly", "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000",
        "a=rtpmap:97 MPEG4/90000",
    ]  # fmt: skip
    if transport != "udp":
        lines += [f"a=setup:{'passive' if transport == 'tcp_passive' else 'active'}", "a=connection:new"]
    return "\r\n".join([*lines, f"y={ssrc_value}", ""])


@dataclass(frozen=True)
class Answer:
    host: str
    port: int
    transport: str  # a key of TRANSPORTS, from the device's point of view mirrored to ours
    payload: int
    encoding: str  # "PS", "H264", ...
    ssrc: str


def answer(text: str) -> Answer:
    host, port, proto, payload, ssrc_value, setup = "", 0, "RTP/AVP", 96, "", ""
    rtpmap: dict[int, str] = {}
    for line in text.splitlines():
        kind, _, value = line.strip().partition("=")
        if kind == "c":
            host = value.split()[-1]
        elif kind == "m":
            parts = value.split()
            port, proto, payload = int(parts[1]), parts[2], int(parts[3])
        elif kind == "y":
            ssrc_value = value
        elif kind == "a" and value.startswith("rtpmap:"):
            number, _, name = value[7:].partition(" ")
            rtpmap[int(number)] = name.split("/")[0].upper()
        elif kind == "a" and value.startswith("setup:"):
            setup = value[6:]
    transport = "udp" if proto == "RTP/AVP" else ("tcp_passive" if setup == "active" else "tcp_active")
    return Answer(host, port, transport, payload, rtpmap.get(payload, "PS"), ssrc_value)
