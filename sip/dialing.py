"""What the control plane and the dialplan share, in one place for everything that dials (dispatch calls,
convened bridge legs, faxes): the contexts it originates into, the channel variables it sets and reads back, and
how a dial attempt ended (Asterisk's DIALSTATUS mapped to a result, each result with its Chinese name)."""

from collections.abc import Mapping
from typing import Any

# Contexts of dialplans/templates/*.conf.j2 the control plane originates into.
DISPATCH_CONTEXT = "switchboard-dispatch"  # the fallback loop over a party's numbers (dispatch.conf.j2)
TRANSFER_CONTEXT = "switchboard-transfer"
HOLD_CONTEXT = "switchboard-hold"
BRIDGE_CONTEXT = "switchboard-bridge"  # straight into a bridge, no PIN (bridges.conf.j2)
VOICE_CONTEXT = "switchboard-voice"  # a voice notification, once a number answered (voice.conf.j2)

# Channel variables. INCIDENT_ID and SB_CALL_ID are inherited by dialled legs (set as __NAME) and listed in
# manager.conf's channelvars, so that events about any leg carry them.
INCIDENT_ID = "INCIDENT_ID"
CALL_ID = "SB_CALL_ID"
TARGETS = "SB_TARGETS"  # the dial strings to try in order, joined by &
RING_TIMEOUT = "SB_RING_TIMEOUT"
RECORD = "SB_RECORD"  # 1: MixMonitor the answered conversation as <call id>.wav
# A voice notification: the audio to play (absolute path without extension), at most how many times, how long the
# prompt waits for a key; the dialplan leaves the outcome in VOICE_OUTCOME, which manager.conf's channelvars put on
# the channel's Hangup event: "confirmed/<plays>/<epoch of the key>" or "unconfirmed/<plays>/".
VOICE_FILE = "SB_VOICE_FILE"
VOICE_PLAYS = "SB_VOICE_PLAYS"
VOICE_WAIT = "SB_VOICE_WAIT"
VOICE_OUTCOME = "SB_VOICE"

# The uniqueids the control plane gives the channels it originates (Originate ChannelId / OtherChannelId): AMI
# events name a channel by them, and manager.conf passes or drops a channel's events by them. A call's legs are
# <call id>-desk (the desk, or a voice call's playing half) and <call id>-dial (a voice call's dialling half); a
# convened invitee's Local channel is <participant id>-r<round> (the half that joins the bridge) and that plus -d
# (the half that runs the dialling loop, whose Dial events nobody follows).
DESK_LEG, DIAL_LEG = "-desk", "-dial"
CONVENE_LEG = r"-r[0-9]+$"  # matches convene_leg(...)
CONVENE_FAR_LEG = r"-r[0-9]+-d$"  # matches convene_far_leg(...)


def convene_leg(participant_id: str, round_: int) -> str:
    return f"{participant_id}-r{round_}"


def convene_far_leg(participant_id: str, round_: int) -> str:
    return f"{convene_leg(participant_id, round_)}-d"


def inherited(name: str, value: object) -> str:
    """An Originate `Variable` that every channel dialled from this one inherits."""
    return f"__{name}={value}"


def channel_variables(message: Mapping[str, Any]) -> dict[str, str]:
    """The `ChanVariable: NAME=value` headers manager.conf's channelvars adds to an event (panoramisk gives one
    header as a string, several as a list)."""
    raw = message.get("ChanVariable") or []
    result = {}
    for item in [raw] if isinstance(raw, str) else raw:
        name, _, value = str(item).partition("=")
        result[name.strip()] = value.strip()
    return result


# Dial()'s DIALSTATUS -> the result recorded for the attempt.
DIAL_RESULTS = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CHANUNAVAIL": "unreachable",
    "CONGESTION": "unreachable",
    "CANCEL": "cancelled",
}
RESULT_NAMES = {
    "answered": "接通",
    "no_answer": "无人接听",
    "busy": "占线",
    "unreachable": "无法接通",
    "cancelled": "取消",
    "engine_down": "电话引擎不可用",
}


def dial_result(status: str) -> str:
    """The result of a DIALSTATUS; one we do not know is kept, in lower case."""
    return DIAL_RESULTS.get(status, status.lower())
