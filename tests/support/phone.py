"""A programmable SIP phone: pjsua2 in a process of its own, driven by JSON lines on stdin and stdout.

Run as ``python -m tests.support.phone [--rtp-port N] [--log-level N]``. Each line on stdin is one command, an
object with
``id`` (echoed in the reply) and ``cmd``; each line on stdout is a reply (``{"id": .., "ok": true, ...}`` or
``{"id": .., "ok": false, "error": "...", "field": "..."}``) or an event (``{"event": "...", ...}``).

Commands (fields in brackets are optional):
- ``account`` name, [port], [bind], [registrar host:port, user, password, [uri], [expires]], [rtp_port],
  [headers: names of headers to report on incoming calls]. Without ``registrar`` a local account that listens on
  UDP ``port`` (0: any free port; the reply says which) and takes calls sent straight to it.
- ``answer`` account, mode (``auto`` after [delay_ms], ``busy`` = 486, ``reject`` with [code], ``never`` /
  ``manual``: ring until answered or cancelled); or ``answer`` call, [code]: answer that ringing call now.
- ``call`` [account], uri, [headers {name: value}]: the reply carries the new call's id.
- ``hangup`` call, [code]; ``hold`` call, [release];
  ``play_tone`` call, freq (Hz, or two for a dual tone), [volume], [stop];
  ``record`` call, path, [stop] (WAV of what the phone receives); ``dtmf`` call, digits, [method rfc4733|info];
  ``status``; ``quit``.
Events: ``ready``, ``registration``, ``incoming_call``, ``call_state`` (calling, incoming, early, connecting,
confirmed, disconnected; with SIP ``code`` and ``reason``), ``media`` (audio active, with the codec), ``dtmf``
(one per digit received), ``recording`` (a recording file is complete).

pjsua2 facts this follows (see ENGINES.md): at most 4 calls and 8 accounts per process; a null sound device with
``sndAutoCloseTime = -1``; one thread owns the library (this process is single-threaded: stdin is polled between
``libHandleEvents`` rounds); every Call stays referenced until it is disconnected; everything is freed, then
``gc.collect()``, then ``libDestroy()``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import pjsua2 as pj

from probe import endpoint
from probe.endpoint import CLOCK_RATE, MAX_CALLS

MAX_ACCOUNTS = 8  # PJSUA_MAX_ACC: the 9th aborts the process, so it is refused here first
PJ_ETOOMANY = 70010
DTMF_DIGITS = re.compile(r"^[0-9*#A-Da-d]+$")

_STATES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}


class CommandError(Exception):
    """A command that cannot be carried out; ``field`` names the offending field, if one is to blame."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def pj_message(error: pj.Error) -> str:
    return str(getattr(error, "reason", "") or error)


def caller_id(remote_uri: str) -> tuple[str, str]:
    """(name, number) from a From/remote URI such as ``"Alice" <sip:8001@host>;tag=x``."""
    name = ""
    uri = remote_uri.strip()
    match = re.match(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>', uri)
    if match:
        name = (match.group(1) if match.group(1) is not None else match.group(2) or "").strip()
        name = re.sub(r"\\(.)", r"\1", name)
        uri = match.group(3)
    number = re.match(r"^(?:sips?|tel):([^@;>?]+)", uri)
    return name, number.group(1) if number else ""


def message_headers(whole_message: str, names: list[str]) -> dict[str, str]:
    """The first value of each asked-for header (case-insensitive) in a SIP message."""
    wanted = {name.lower(): name for name in names}
    found: dict[str, str] = {}
    for line in whole_message.split("\r\n\r\n", 1)[0].splitlines()[1:]:
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if sep and key in wanted and wanted[key] not in found:
            found[wanted[key]] = value.strip()
    return found


# Field readers: each raises CommandError naming the field.
_MISSING = object()


def _field(command: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    if name not in command or command[name] is None:
        if default is _MISSING:
            raise CommandError(f"missing field '{name}'", name)
        return default
    value = command[name]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise CommandError(f"field '{name}' must be {getattr(kind, '__name__', kind)}", name)
    if not isinstance(value, kind):
        names = "/".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        raise CommandError(f"field '{name}' must be {names}, not {type(value).__name__}", name)
    return value


def _port(command: dict[str, Any], name: str, default: int) -> int:
    value = _field(command, name, int, default)
    if not 0 <= value <= 65535:
        raise CommandError(f"field '{name}' must be a port number 0-65535", name)
    return value


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A pjsua2 callback whose Python errors become ``error`` events instead of vanishing inside SWIG."""

    @functools.wraps(callback)
    def run(self: Any, prm: Any) -> None:
        try:
            callback(self, prm)
        except Exception as error:
            self.phone.emit("error", where=callback.__name__, error=f"{type(error).__name__}: {error}")

    return run


class PhoneAccount(pj.Account):
    def __init__(self, phone: Phone, name: str, report_headers: list[str]) -> None:
        super().__init__()
        self.phone = phone
        self.name = name
        self.report_headers = report_headers
        self.policy: dict[str, Any] = {"mode": "manual"}

    @_guarded
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        info = self.getInfo()
        self.phone.emit(
            "registration",
            account=self.name,
            code=prm.code,
            reason=prm.reason,
            registered=bool(info.regIsActive),
            expires=prm.expiration,
        )

    @_guarded
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.phone.incoming_call(self, prm)


class PhoneCall(pj.Call):
    def __init__(self, phone: Phone, account: PhoneAccount, key: str, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.account = account
        self.key = key
        self.state = "null"
        self.audio: pj.AudioMedia | None = None
        self.tone: pj.ToneGenerator | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.recording_path: str | None = None

    @_guarded
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.state = _STATES.get(info.state, str(info.state))
        self.phone.emit(
            "call_state",
            call=self.key,
            account=self.account.name,
            state=self.state,
            code=info.lastStatusCode,
            reason=info.lastReason,
        )
        if self.state == "disconnected":
            self.audio = None
            self.phone.finished.append(self.key)  # freed by the main loop, outside pjsua's callback

    @_guarded
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()  # keep it referenced: the media entries point into it
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            self.audio = self.getAudioMedia(media.index)
            if self.tone is not None:
                self.tone.startTransmit(self.audio)
            if self.recorder is not None:
                self.audio.startTransmit(self.recorder)
            try:
                codec = self.getStreamInfo(media.index).codecName
            except pj.Error:
                codec = ""
            self.phone.emit("media", call=self.key, state="active", codec=codec)
            return

    @_guarded
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.phone.emit("dtmf", call=self.key, digit=prm.digit)

    def release_media(self) -> None:
        """Stop and free this call's tone generator and recorder (the recorder's WAV is complete after this)."""
        if self.tone is not None:
            self.tone.stop()
            self.tone = None
        self.stop_recording()

    def stop_recording(self) -> str | None:
        """Free the recorder, which completes its WAV file; returns the file's path."""
        path = self.recording_path
        if self.recorder is not None:
            if self.audio is not None:
                self.audio.stopTransmit(self.recorder)
            self.recorder = None
            self.recording_path = None
            self.phone.emit("recording", call=self.key, path=path, state="complete")
        return path


class Phone:
    """The pjsua2 endpoint, its accounts and calls, and the command dispatcher."""

    def __init__(self, out: TextIO, rtp_port: int, log_level: int, codecs: tuple[str, ...]) -> None:
        self.out = out
        self.rtp_port = rtp_port
        self.accounts: dict[str, PhoneAccount] = {}
        self.calls: dict[str, PhoneCall] = {}
        self.finished: list[str] = []
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.running = True
        self._next_call = 0
        self.ep = endpoint.start("Switchboard phone (pjsua2)", log_level, codecs)

    # Output

    def emit(self, event: str, **fields: Any) -> None:
        self.write({"event": event, **fields})

    def write(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.out.flush()

    # Main loop

    def run(self, stdin_fd: int) -> None:
        buffer = b""
        while self.running:
            self.ep.libHandleEvents(10)
            self._free_finished()
            self._run_timers()
            readable, _, _ = select.select([stdin_fd], [], [], 0)
            if not readable:
                continue
            chunk = os.read(stdin_fd, 65536)
            if not chunk:  # EOF: whoever drove us is gone
                break
            buffer += chunk
            while b"\n" in buffer and self.running:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    self.handle_line(line)

    def _run_timers(self) -> None:
        now = time.monotonic()
        due = [action for when, action in self.timers if when <= now]
        self.timers = [(when, action) for when, action in self.timers if when > now]
        for action in due:
            try:
                action()
            except pj.Error as error:
                self.emit("error", error=pj_message(error))

    def _free_finished(self) -> None:
        while self.finished:
            call = self.calls.pop(self.finished.pop(), None)
            if call is not None:
                call.release_media()
                del call
                gc.collect()

    def handle_line(self, line: bytes) -> None:
        command_id = None
        try:
            try:
                command = json.loads(line)
            except ValueError as error:
                raise CommandError(f"not a JSON object: {error}", "json") from None
            if not isinstance(command, dict):
                raise CommandError("a command is a JSON object", "json")
            command_id = command.get("id")
            name = _field(command, "cmd", str)
            handler = getattr(self, f"cmd_{name}", None)
            if handler is None:
                raise CommandError(f"unknown command '{name}'", "cmd")
            reply = handler(command) or {}
            self.write({"id": command_id, "ok": True, **reply})
        except CommandError as error:
            self.write({"id": command_id, "ok": False, "error": str(error), "field": error.field})
        except pj.Error as error:
            self.write({"id": command_id, "ok": False, "error": pj_message(error), "field": None})
        except Exception as error:  # a bug here must not take the phone (and its calls) down
            self.write({"id": command_id, "ok": False, "error": f"{type(error).__name__}: {error}", "field": None})

    # Lookups

    def _account(self, command: dict[str, Any]) -> PhoneAccount:
        name = _field(command, "account", str, None)
        if name is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            raise CommandError("missing field 'account' (this phone has several or none)", "account")
        if name not in self.accounts:
            raise CommandError(f"no account '{name}'", "account")
        return self.accounts[name]

    def _call(self, command: dict[str, Any]) -> PhoneCall:
        key = _field(command, "call", str)
        call = self.calls.get(key)
        if call is None:
            raise CommandError(f"no call '{key}' (never made, or already disconnected)", "call")
        return call

    def _new_call(self, account: PhoneAccount, call_id: int = pj.PJSUA_INVALID_ID) -> PhoneCall:
        self._next_call += 1
        call = PhoneCall(self, account, f"c{self._next_call}", call_id)
        self.calls[call.key] = call
        return call

    # Commands

    def cmd_account(self, command: dict[str, Any]) -> dict[str, Any]:
        name = _field(command, "name", str)
        if not re.match(r"^[A-Za-z0-9_.+-]{1,64}$", name):
            raise CommandError("field 'name' must be 1-64 letters, digits or _.+-", "name")
        if name in self.accounts:
            raise CommandError(f"account '{name}' exists already", "name")
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise CommandError(f"at most {MAX_ACCOUNTS} accounts per phone process (pjsua2 limit)", "name")
        registrar = _field(command, "registrar", str, None)
        if registrar is not None and not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", registrar):
            raise CommandError("field 'registrar' must be host or host:port", "registrar")
        registrar_host = registrar.rsplit(":", 1)[0] if registrar and registrar.count(":") == 1 else registrar
        loopback = registrar is None or registrar_host in ("localhost", "[::1]") or registrar_host.startswith("127.")
        bind = _field(command, "bind", str, "127.0.0.1" if loopback else "")
        port = _port(command, "port", 0)
        rtp_port = _port(command, "rtp_port", self.rtp_port + 100 * len(self.accounts))
        headers = _field(command, "headers", list, [])
        if not all(isinstance(h, str) for h in headers):
            raise CommandError("field 'headers' must be a list of header names", "headers")

        transport = pj.TransportConfig()
        transport.port = port
        transport.boundAddress = bind
        transport_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        local = self.ep.transportGetInfo(transport_id).localName
        local_port = int(local.rsplit(":", 1)[1])

        config = pj.AccountConfig()
        config.sipConfig.transportId = transport_id
        config.mediaConfig.transportConfig.port = rtp_port
        config.mediaConfig.transportConfig.portRange = 100
        config.mediaConfig.transportConfig.boundAddress = bind
        if registrar is None:
            config.idUri = _field(command, "uri", str, f"sip:{name}@{local}")
        else:
            user = _field(command, "user", str)
            password = _field(command, "password", str)
            config.idUri = _field(command, "uri", str, f"sip:{user}@{registrar_host}")
            config.regConfig.registrarUri = f"sip:{registrar}"
            config.regConfig.timeoutSec = _field(command, "expires", int, 300)
            config.regConfig.retryIntervalSec = 5
            config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        if self.ep.utilVerifySipUri(config.idUri) != 0:
            raise CommandError(f"field 'uri' is not a SIP URI: {config.idUri}", "uri")
        account = PhoneAccount(self, name, headers)
        try:
            account.create(config)
        except pj.Error as error:
            raise CommandError(f"account rejected by pjsua: {pj_message(error)}", "uri") from None
        self.accounts[name] = account
        return {"account": name, "uri": config.idUri, "port": local_port, "contact": f"sip:{name}@{local}"}

    def cmd_answer(self, command: dict[str, Any]) -> dict[str, Any]:
        if "call" in command:
            call = self._call(command)
            code = _field(command, "code", int, 200)
            if call.state not in ("incoming", "early"):
                raise CommandError(f"call '{call.key}' is {call.state}, not ringing", "call")
            call.answer(self._op(code))
            return {"call": call.key}
        account = self._account(command)
        mode = _field(command, "mode", str)
        policy: dict[str, Any] = {"mode": mode}
        if mode == "auto":
            policy["delay_ms"] = _field(command, "delay_ms", int, 0)
        elif mode == "busy":
            policy = {"mode": "reject", "code": 486}
        elif mode == "reject":
            policy["code"] = _field(command, "code", int, 486)
            if not 300 <= policy["code"] <= 699:
                raise CommandError("field 'code' must be a final failure status 300-699", "code")
        elif mode not in ("never", "manual"):
            raise CommandError("field 'mode' must be auto, busy, reject, never or manual", "mode")
        account.policy = policy
        return {"account": account.name, "policy": policy}

    def cmd_call(self, command: dict[str, Any]) -> dict[str, Any]:
        account = self._account(command)
        uri = _field(command, "uri", str)
        if self.ep.utilVerifySipUri(uri) != 0:
            raise CommandError(f"field 'uri' is not a SIP URI: {uri!r}", "uri")
        headers = _field(command, "headers", dict, {})
        for name, value in headers.items():
            if not re.match(r"^[A-Za-z0-9!%*_+`'~.-]+$", name) or not isinstance(value, str) or "\n" in value:
                raise CommandError(f"field 'headers' has a bad header {name!r}", "headers")
        live = sum(1 for call in self.calls.values() if call.state != "disconnected")
        if live >= MAX_CALLS:
            raise CommandError(
                f"call limit reached: pjsua2 is compiled with at most {MAX_CALLS} calls per process; "
                "use another phone process",
                "call",
            )
        op = self._op()
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            op.txOption.headers.append(header)
        call = self._new_call(account)
        try:
            call.makeCall(uri, op)
        except pj.Error as error:
            self.calls.pop(call.key, None)
            if error.status == PJ_ETOOMANY:
                raise CommandError(f"call limit reached: pjsua refused ({pj_message(error)})", "call") from None
            raise CommandError(f"call refused by pjsua: {pj_message(error)}", "uri") from None
        return {"call": call.key}

    def cmd_hangup(self, command: dict[str, Any]) -> dict[str, Any]:
        call = self._call(command)
        code = _field(command, "code", int, 0)
        if call.state != "disconnected":
            call.hangup(self._op(code))
        return {"call": call.key}

    def cmd_hold(self, command: dict[str, Any]) -> dict[str, Any]:
        """Put the call on hold (re-INVITE with sendonly), or take it off hold with `release`."""
        call = self._call(command)
        if call.state != "confirmed":
            raise CommandError(f"call '{call.key}' is {call.state}, not confirmed", "call")
        if _field(command, "release", bool, False):
            op = self._op()
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(op)
        else:
            call.setHold(self._op())
        return {"call": call.key}

    def cmd_play_tone(self, command: dict[str, Any]) -> dict[str, Any]:
        call = self._call(command)
        if _field(command, "stop", bool, False):
            if call.tone is not None:
                call.tone.stop()
                call.tone = None
            return {"call": call.key, "playing": False}
        freq = _field(command, "freq", (int, float, list))
        freqs = freq if isinstance(freq, list) else [freq]
        if not 1 <= len(freqs) <= 2 or not all(isinstance(f, int | float) and 0 < f < CLOCK_RATE / 2 for f in freqs):
            raise CommandError(f"field 'freq' must be one or two frequencies below {CLOCK_RATE // 2} Hz", "freq")
        volume = _field(command, "volume", int, 0)  # 0: pjmedia's default level
        desc = pj.ToneDesc()
        desc.freq1 = int(freqs[0])
        desc.freq2 = int(freqs[1]) if len(freqs) == 2 else 0
        desc.on_msec = 10000
        desc.off_msec = 0
        desc.volume = volume
        tones = pj.ToneDescVector()
        tones.append(desc)
        if call.tone is not None:
            call.tone.stop()
        else:
            call.tone = pj.ToneGenerator()
            call.tone.createToneGenerator(CLOCK_RATE, 1)
            if call.audio is not None:
                call.tone.startTransmit(call.audio)
        call.tone.play(tones, True)
        return {"call": call.key, "playing": True, "media": call.audio is not None}

    def cmd_record(self, command: dict[str, Any]) -> dict[str, Any]:
        call = self._call(command)
        if _field(command, "stop", bool, False):
            return {"call": call.key, "path": call.stop_recording()}
        path = _field(command, "path", str)
        if not path.lower().endswith(".wav"):
            raise CommandError("field 'path' must name a .wav file", "path")
        if call.recorder is not None:
            raise CommandError(f"call '{call.key}' is already recording to {call.recording_path}", "call")
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as error:
            raise CommandError(f"cannot record to {path}: {pj_message(error)}", "path") from None
        call.recorder = recorder
        call.recording_path = path
        if call.audio is not None:
            call.audio.startTransmit(recorder)
        return {"call": call.key, "path": path, "media": call.audio is not None}

    def cmd_dtmf(self, command: dict[str, Any]) -> dict[str, Any]:
        call = self._call(command)
        digits = _field(command, "digits", str)
        if not DTMF_DIGITS.match(digits):
            raise CommandError("field 'digits' may hold only 0-9, *, # and A-D", "digits")
        method = _field(command, "method", str, "rfc4733")
        if method not in ("rfc4733", "info"):
            raise CommandError("field 'method' must be rfc4733 or info", "method")
        if call.state != "confirmed":
            raise CommandError(f"call '{call.key}' is {call.state}, not confirmed", "call")
        param = pj.CallSendDtmfParam()
        param.digits = digits
        param.method = pj.PJSUA_DTMF_METHOD_RFC2833 if method == "rfc4733" else pj.PJSUA_DTMF_METHOD_SIP_INFO
        call.sendDtmf(param)
        return {"call": call.key, "digits": digits}

    def cmd_status(self, command: dict[str, Any]) -> dict[str, Any]:
        return {
            "accounts": {name: acc.policy for name, acc in self.accounts.items()},
            "calls": {key: call.state for key, call in self.calls.items()},
        }

    def cmd_quit(self, command: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {}

    # Incoming calls

    def incoming_call(self, account: PhoneAccount, prm: pj.OnIncomingCallParam) -> None:
        call = self._new_call(account, prm.callId)
        info = call.getInfo()
        call.state = _STATES.get(info.state, "incoming")
        name, number = caller_id(info.remoteUri)
        self.emit(
            "incoming_call",
            call=call.key,
            account=account.name,
            remote_uri=info.remoteUri,
            local_uri=info.localUri,
            caller_name=name,
            caller_number=number,
            headers=message_headers(prm.rdata.wholeMsg, account.report_headers),
        )
        policy = account.policy
        if policy["mode"] == "reject":
            call.answer(self._op(policy["code"]))
            return
        call.answer(self._op(180))
        if policy["mode"] == "auto":
            key = call.key
            self.timers.append((time.monotonic() + policy["delay_ms"] / 1000, lambda: self._auto_answer(key)))

    def _auto_answer(self, key: str) -> None:
        call = self.calls.get(key)
        if call is not None and call.state in ("incoming", "early"):
            call.answer(self._op(200))

    @staticmethod
    def _op(code: int = 0) -> pj.CallOpParam:
        op = pj.CallOpParam(True)
        if code:
            op.statusCode = code
        return op

    # Shutdown

    def close(self) -> None:
        """Hang up, free every pjsua2 object, collect, destroy the library."""
        for key in list(self.calls):  # no loop variable may keep a Call alive past libDestroy()
            if self.calls[key].state != "disconnected":
                try:
                    self.calls[key].hangup(self._op())
                except pj.Error:
                    pass
        deadline = time.monotonic() + 2
        while any(c.state != "disconnected" for c in self.calls.values()) and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
        self.finished.extend(self.calls)
        self._free_finished()
        registered = False
        for account in self.accounts.values():
            try:
                registered = registered or bool(account.getInfo().regIsActive)
                account.shutdown()  # sends the un-REGISTER
            except pj.Error:
                pass
        self.accounts.clear()
        self.timers.clear()
        deadline = time.monotonic() + (0.5 if registered else 0)
        while time.monotonic() < deadline:  # let un-REGISTER and its challenge go through
            self.ep.libHandleEvents(20)
        gc.collect()
        # The network goodbyes are done: skip libDestroy's fixed one-second wait for them.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.phone", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rtp-port", type=int, default=40000, help="RTP port base (keep away from 4000-4999)")
    parser.add_argument("--log-level", type=int, default=1, help="pjsua log level on stderr, 0-6")
    parser.add_argument("--codecs", default=",".join(endpoint.G711), help="codecs offered, in order")
    args = parser.parse_args(argv)

    out = endpoint.claim_stdout()

    phone = Phone(out, args.rtp_port, args.log_level, tuple(c.strip() for c in args.codecs.split(",") if c.strip()))

    def stop(signum: int, frame: object) -> None:
        phone.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    phone.emit("ready", pid=os.getpid(), max_calls=MAX_CALLS, max_accounts=MAX_ACCOUNTS)
    try:
        phone.run(sys.stdin.fileno())
    finally:
        phone.close()
        phone.emit("exit")
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
