"""Pieces of SIPp scenarios (Debian `sip-tester`) that the SIPp peers of the tests and benchmarks share: a UAS's
response to the request it last received, and the SDP it answers with."""

PCMA, TELEPHONE_EVENT = 8, 101  # the payload types that SDP offers


def reply(
    status: str, *, tag: bool = True, contact: bool = False, sdp: str = "", cseq: str = "[last_CSeq:]", extra: str = ""
) -> str:
    """A `<send>` of the response `status` ("200 OK") to the last request received. `tag` adds ours to To (every
    response within our dialog but the one to a BYE, whose To already has it); `contact` names where we listen;
    `extra` is more header lines."""
    to = "[last_To:];tag=[pid]SIPpTag01[call_number]" if tag else "[last_To:]"
    headers = ["[last_Via:]", "[last_From:]", to, "[last_Call-ID:]", cseq]
    headers += ["Contact: <sip:[local_ip]:[local_port];transport=[transport]>"] if contact else []
    headers += [extra] if extra else []
    body = ["Content-Type: application/sdp", "Content-Length: [len]", "", sdp] if sdp else ["Content-Length: 0", ""]
    return "  <send><![CDATA[\n" + "\n".join([f"SIP/2.0 {status}", *headers, *body]) + "\n]]></send>\n"


def audio_sdp(port: str, dtmf: bool = False) -> str:
    """A-law at 20 ms on `port` (a SIPp keyword); `dtmf`: also RFC 4733 events."""
    lines = ["v=0", "o=- 53655765 2353687637 IN IP4 [local_ip]", "s=-", "c=IN IP4 [media_ip]", "t=0 0"]
    formats = f"{PCMA} {TELEPHONE_EVENT}" if dtmf else f"{PCMA}"
    lines += [f"m=audio {port} RTP/AVP {formats}", f"a=rtpmap:{PCMA} PCMA/8000"]
    lines += [f"a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000", f"a=fmtp:{TELEPHONE_EVENT} 0-16"] if dtmf else []
    return "\n".join([*lines, "a=ptime:20", ""])
