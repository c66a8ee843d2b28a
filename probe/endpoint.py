"""A pjsua2 endpoint set up the way pjsua2 works on this kind of machine (ENGINES.md), for the line-check probe and
the test phones alike: one thread owns the library (the caller loops on ``libHandleEvents``), a null sound device
whose clock never stops, the conference bridge at the G.711 rate, and only the codecs asked for."""

import os
import sys
from typing import TextIO

import pjsua2 as pj

MAX_CALLS = 4  # PJSUA_MAX_CALLS compiled into the pjsua2-python wheel
CLOCK_RATE = 8000  # the conference bridge runs at the G.711 rate: no resampling, recordings at 8 kHz
G711 = ("PCMU/8000", "PCMA/8000")


def start(user_agent: str, log_level: int, codecs: tuple[str, ...] = G711) -> pj.Endpoint:
    """A started endpoint; the caller frees its objects, ``gc.collect()``s and ``libDestroy()``s it."""
    ep = pj.Endpoint()
    ep.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = MAX_CALLS
    config.uaConfig.userAgent = user_agent
    config.medConfig.sndAutoCloseTime = -1  # else the bridge clock stops after a second
    config.medConfig.clockRate = CLOCK_RATE
    config.medConfig.sndClockRate = CLOCK_RATE
    config.medConfig.noVad = True
    config.medConfig.ecTailLen = 0
    config.logConfig.level = log_level
    config.logConfig.consoleLevel = log_level
    ep.libInit(config)
    ep.audDevManager().setNullDev()
    ep.libStart()
    wanted = [c.lower() for c in codecs]  # offer only these, in this order (pjsua prefers speex otherwise)
    for codec in ep.codecEnum2():
        name = codec.codecId.lower()
        rank = next((i for i, w in enumerate(wanted) if name.startswith(w)), None)
        ep.codecSetPriority(codec.codecId, 255 - rank if rank is not None else 0)
    return ep


def claim_stdout() -> TextIO:
    """stdout for the JSON-lines protocol alone: anything else printed there (pjsua's log) goes to stderr."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return out
