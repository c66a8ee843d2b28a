"""The line-check probe: pjsua2 in a process of its own (pjsua2 blocks and owns its thread; the control plane's event
loop must not), run as ``python -m probe`` by switchboard/linechecks/probe.py.

It reads one JSON object on stdin, the job:
``{"registrar": "host:port", "user", "password", "ring_seconds", "tone_hz", "tone_seconds", "listen_seconds",
"workdir", "lines": [{"number", "kind": "desk" | "trunk" | "echo"}]}``,
registers as the probe account, calls each line in turn and writes JSON lines on stdout:
- ``{"event": "registration", "code", "reason"}`` (the probe stops here unless the code is 200);
- ``{"event": "result", "index", "outcome": "answered" | "failed" | "no_answer", "code", "reason", "answer_ms",
  "level_dbfs", "delay_ms", "loss"}`` per line: the SIP status and reason of a failed call, the answer time of an
  answered one and, for lines that echo (kind echo and trunk), how the tone came back (probe/audio.py);
- ``{"event": "done"}``.
Facts only: the control plane judges them against its thresholds and words them in Chinese.

A desk phone is a person's phone: it is checked for answering (registered, reachable, picked up) but does not echo,
so its audio path is not measured.
"""

import gc
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pjsua2 as pj

from probe import endpoint
from probe.audio import echo_of

ECHOING_KINDS = ("echo", "trunk")
FACTS = ("answer_ms", "level_dbfs", "delay_ms", "loss")  # what a call measures; None where it did not get that far
LOG_LEVEL = 1  # pjsua's errors, on stderr (the control plane keeps them in <var_dir>/linecheck/probe.log)


class ProbeAccount(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.code = 0
        self.reason = ""

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.code, self.reason = prm.code, prm.reason


class ProbeCall(pj.Call):
    def __init__(self, account: ProbeAccount) -> None:
        super().__init__(account)
        self.state = "calling"
        self.code = 0
        self.reason = ""
        self.answered_at: float | None = None
        self.audio: pj.AudioMedia | None = None
        self.media_index = -1

    def received(self) -> int:
        """RTP packets received on the audio stream so far."""
        return self.getStreamStat(self.media_index).rtcp.rxStat.pkt if self.audio is not None else 0

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.state, self.answered_at = "confirmed", time.monotonic()
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.state, self.code, self.reason, self.audio = "disconnected", info.lastStatusCode, info.lastReason, None

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()  # kept referenced while its media entries are read
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio, self.media_index = self.getAudioMedia(media.index), media.index
                return


class Probe:
    def __init__(self, job: dict[str, Any], out: TextIO) -> None:
        self.job = job
        self.out = out
        self.ep = endpoint.start("Switchboard line check (pjsua2)", LOG_LEVEL)
        self.account = ProbeAccount()

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
        self.out.flush()

    def pump(self, done: Callable[[], bool], seconds: float) -> bool:
        """Run pjsua's events until ``done()`` or ``seconds`` have passed; whether it is done."""
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
        return done()

    def register(self) -> bool:
        config = pj.AccountConfig()
        config.sipConfig.transportId = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, pj.TransportConfig())
        host = self.job["registrar"].rsplit(":", 1)[0]
        config.idUri = f"sip:{self.job['user']}@{host}"
        config.regConfig.registrarUri = f"sip:{self.job['registrar']}"
        config.regConfig.retryIntervalSec = 0  # one try: a probe that cannot register says so
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", self.job["user"], 0, self.job["password"]))
        self.account.create(config)
        self.pump(lambda: self.account.code != 0, 10)
        self.emit("registration", code=self.account.code, reason=self.account.reason)
        return self.account.code == 200

    def check(self, line: dict[str, Any]) -> dict[str, Any]:
        call = ProbeCall(self.account)
        result: dict[str, Any] = dict.fromkeys(FACTS)
        started = time.monotonic()
        try:
            call.makeCall(f"sip:{line['number']}@{self.job['registrar']}", pj.CallOpParam(True))
        except pj.Error as error:
            return result | {"outcome": "failed", "code": 0, "reason": str(getattr(error, "reason", error))}
        self.pump(lambda: call.state != "calling", self.job["ring_seconds"])
        if call.state == "disconnected":
            result |= {"outcome": "failed", "code": call.code, "reason": call.reason}
        elif call.state == "calling":
            result |= {"outcome": "no_answer", "code": 0, "reason": ""}
        else:
            assert call.answered_at is not None
            result |= {"outcome": "answered", "code": 200, "reason": ""}
            result["answer_ms"] = round((call.answered_at - started) * 1000)
            if line["kind"] in ECHOING_KINDS:
                result |= self.measure(call, Path(self.job["workdir"]) / f"{line['number']}.wav")
        if call.state != "disconnected":
            call.hangup(pj.CallOpParam(True))
            self.pump(lambda: call.state == "disconnected", 5)
        return result  # the call is freed as this returns (run collects)

    def measure(self, call: ProbeCall, path: Path) -> dict[str, Any]:
        """Send the tone and record what comes back from the same bridge tick on, for the tone and then
        ``listen_seconds`` more (the longest round trip worth waiting for). The tone starts once the far end's RTP
        arrives: Asterisk drops a new stream's first packets while it learns the source (strict RTP), and a tone
        sent into that would count as lost on a sound line."""
        if not self.pump(lambda: call.audio is not None or call.state == "disconnected", 5) or call.audio is None:
            return {"loss": 1.0}
        self.pump(lambda: call.state == "disconnected" or call.received() > 0, 3)
        if call.audio is None:
            return {"loss": 1.0}
        tone_seconds = float(self.job["tone_seconds"])
        desc = pj.ToneDesc()
        desc.freq1, desc.freq2 = int(self.job["tone_hz"]), 0
        desc.on_msec, desc.off_msec = int(tone_seconds * 1000), 0
        tones = pj.ToneDescVector()
        tones.append(desc)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        tone = pj.ToneGenerator()
        tone.createToneGenerator(endpoint.CLOCK_RATE, 1)
        call.audio.startTransmit(recorder)
        tone.startTransmit(call.audio)
        tone.play(tones, False)
        self.pump(lambda: call.state == "disconnected", tone_seconds + float(self.job["listen_seconds"]))
        tone.stop()
        del tone, recorder  # destroying the recorder completes its WAV file
        gc.collect()
        echo = echo_of(path, self.job["tone_hz"], tone_seconds)
        path.unlink()
        level = None if echo.level_dbfs is None else round(echo.level_dbfs, 1)
        delay = None if echo.delay_ms is None else round(echo.delay_ms, 1)
        return {"level_dbfs": level, "delay_ms": delay, "loss": round(echo.loss, 3)}

    def run(self) -> None:
        if self.register():
            for index, line in enumerate(self.job["lines"]):
                try:
                    result = self.check(line)
                except Exception as error:  # noqa: BLE001 - one line's trouble must not leave the others unchecked
                    traceback.print_exc()
                    reason = f"{type(error).__name__}: {error}"
                    result = dict.fromkeys(FACTS) | {"outcome": "error", "code": 0, "reason": reason}
                gc.collect()
                self.emit("result", index=index, **result)
        self.emit("done")

    def close(self) -> None:
        if self.account.code == 200:  # un-REGISTER, and wait for Asterisk's answer to it
            self.account.code = 0
            self.account.setRegistration(False)
            self.pump(lambda: self.account.code != 0, 2)
        self.account.shutdown()
        del self.account
        gc.collect()
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)


def main() -> int:
    out = endpoint.claim_stdout()
    probe = Probe(json.loads(sys.stdin.readline()), out)
    try:
        probe.run()
    finally:
        probe.close()
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
