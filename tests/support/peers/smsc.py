"""A test SMSC on smpp34's SMPP 3.4 server (a third-party implementation, Rust core), run as its own process.

    python -m tests.support.peers.smsc --port P --record submits.jsonl [--receipt-delay 0.2] [--throttle-first N]

It accepts binds, answers every submit_sm, and records each one as a JSON line (source, destination,
data_coding, esm_class, UDH ref/part/total, short_message hex, what it answered). Accepted messages get a
delivery receipt (deliver_sm, esm_class 0x04, appendix B text plus the receipted_message_id and message_state
TLVs) `--receipt-delay` seconds later, never instantly: a real SMSC takes time, and an instant receipt races
the client's id mapping. A receipt goes to a session of the same system_id that can receive (the submitting
one when it is a transceiver), as an SMSC routes it; it waits for one as an SMSC queues it.

Binds are checked against `--bind`, what this SMSC is configured for: `transceiver` (the default) unbinds a
bind_transmitter at once; `transmitter_receiver` answers ESME_RINVBNDSTS to a submit_sm on a session that can
receive (a transceiver). smpp34 itself answers a submit_sm on a bind_receiver with generic_nack. Every bind, and
every receipt and MO message sent, is a line with "event" in the record too.

Knobs: `--throttle-first N` answers ESME_RTHROTTLED to the first N submits (after the first `--throttle-after`
M); destinations starting with `--undeliverable-prefix` get stat:UNDELIV; those starting with `--invalid-prefix`
are refused with ESME_RINVDSTADR; `--mo SOURCE=TEXT` delivers one MO message (UCS-2) to the first session that
can receive; `--reply NUMBER=TEXT` has NUMBER answer each message it is sent with TEXT, an MO message (UCS-2) a
second after the receipt, as a person reading it and replying would. It prints `READY` once listening.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import time
from collections.abc import Awaitable
from typing import Any

import smpp34

ESME_RINVBNDSTS = 0x04
ESME_RINVDSTADR = 0x0B
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
STATE_DELIVERED, STATE_UNDELIVERABLE = 2, 5


def _udh(esm_class: int, short_message: bytes) -> dict | None:
    if not esm_class & 0x40 or not short_message:
        return None
    length = short_message[0]
    header, position = short_message[1 : 1 + length], 0
    while position + 2 <= len(header):
        iei, size = header[position], header[position + 1]
        data = header[position + 2 : position + 2 + size]
        if iei == 0x00 and size == 3:
            return {"ref": data[0], "total": data[1], "part": data[2]}
        if iei == 0x08 and size == 4:
            return {"ref": int.from_bytes(data[:2], "big"), "total": data[2], "part": data[3]}
        position += 2 + size
    return None


async def main(args: argparse.Namespace) -> None:
    server = smpp34.Server("127.0.0.1", args.port, system_id="SMSC")
    await server.start()
    print("READY", flush=True)
    esmes: dict[str, smpp34.Esme] = {}
    ids = itertools.count(1)
    throttle_left, skip_left = args.throttle_first, args.throttle_after
    mo_left = bool(args.mo)
    pending: set[asyncio.Task] = set()
    record = open(args.record, "a", buffering=1)  # noqa: SIM115  (one line per submit, flushed)

    def write(line: dict) -> None:
        record.write(json.dumps(line, ensure_ascii=False) + "\n")

    def spawn(work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)  # smpp34's calls return futures, not coroutines
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def receiving(system_id: str, preferred: str) -> smpp34.Esme | None:
        """The session a deliver_sm for `system_id` goes on: `preferred` if it can receive, else another."""
        for _ in range(200):
            esme = esmes.get(preferred)
            if esme is not None and esme.can_receive:
                return esme
            others = [e for e in esmes.values() if e.system_id == system_id and e.can_receive]
            if others:
                return others[0]
            await asyncio.sleep(0.05)
        return None

    async def receipt(event: smpp34.SubmitSmEvent, message_id: str) -> None:
        await asyncio.sleep(args.receipt_delay)
        submitter = esmes.get(event.session_id)
        esme = await receiving(submitter.system_id if submitter else "", event.session_id)
        if esme is None:
            return
        destination = event.destination_addr
        undeliverable = args.undeliverable_prefix and destination.startswith(args.undeliverable_prefix)
        stat, state = ("UNDELIV", STATE_UNDELIVERABLE) if undeliverable else ("DELIVRD", STATE_DELIVERED)
        now = time.strftime("%y%m%d%H%M")
        text = f"id:{message_id} sub:001 dlvrd:{0 if undeliverable else 1:03d} submit date:{now} done date:{now}"
        text += f" stat:{stat} err:{'001' if undeliverable else '000'} text:"
        write({"event": "receipt", "session": esme.session_id, "message_id": message_id})
        with contextlib.suppress(Exception):
            await esme.deliver_sm(
                event.source_addr,
                text.encode(),
                source_addr=destination,
                esm_class=0x04,
                tlvs=[
                    smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
                    smpp34.Tlv(TLV_MESSAGE_STATE, bytes([state])),
                ],
            )

    async def mobile_originated(esme: smpp34.Esme, rule: str) -> None:
        source, _, text = rule.partition("=")
        write({"event": "mo", "session": esme.session_id, "source": source})
        with contextlib.suppress(Exception):
            await esme.deliver_sm("12379", text.encode("utf-16-be"), source_addr=source, data_coding=8)

    replier = args.reply.partition("=")[0]

    async def reply(event: smpp34.SubmitSmEvent) -> None:
        await asyncio.sleep(args.receipt_delay + 1.0)
        submitter = esmes.get(event.session_id)
        esme = await receiving(submitter.system_id if submitter else "", event.session_id)
        if esme is not None:
            await mobile_originated(esme, args.reply)

    def bind(esme: smpp34.Esme) -> None:
        """Record the bind; unbind a transmitter where this SMSC takes transceivers only."""
        line = {"event": "bind", "session": esme.session_id, "system_id": esme.system_id}
        line["can_receive"] = esme.can_receive
        if args.bind == "transceiver" and not esme.can_receive:
            line["problem"] = "bind_transmitter, but this SMSC binds transceivers"
            spawn(esme.unbind())
        write(line)

    def submit_problem(event: smpp34.SubmitSmEvent) -> str | None:
        esme = esmes.get(event.session_id)
        if args.bind == "transmitter_receiver" and esme is not None and esme.can_receive:
            return "submit_sm on a transceiver, but this SMSC binds a transmitter and a receiver"
        return None

    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            esmes[event.session_id] = event
            bind(event)
            if mo_left and event.can_receive:
                mo_left = False
                spawn(mobile_originated(event, args.mo))
        elif isinstance(event, smpp34.Unbound):
            esmes.pop(event.session_id, None)
        elif isinstance(event, smpp34.SubmitSmEvent):
            line = {
                "session": event.session_id,
                "source": event.source_addr,
                "source_addr_ton": event.source_addr_ton,
                "source_addr_npi": event.source_addr_npi,
                "destination": event.destination_addr,
                "dest_addr_ton": event.dest_addr_ton,
                "data_coding": event.data_coding,
                "esm_class": event.esm_class,
                "registered_delivery": event.registered_delivery,
                "udh": _udh(event.esm_class, event.short_message),
                "short_message": event.short_message.hex(),
                "time": time.time(),
            }
            if skip_left > 0:
                skip_left -= 1
                throttle = False
            else:
                throttle, throttle_left = throttle_left > 0, max(throttle_left - 1, 0)
            if problem := submit_problem(event):
                event.reject(ESME_RINVBNDSTS)
                line.update(answer="ESME_RINVBNDSTS", problem=problem)
            elif throttle:
                event.reject(smpp34.ESME_RTHROTTLED)
                line["answer"] = "ESME_RTHROTTLED"
            elif args.invalid_prefix and event.destination_addr.startswith(args.invalid_prefix):
                event.reject(ESME_RINVDSTADR)
                line["answer"] = "ESME_RINVDSTADR"
            else:
                message_id = f"{os.getpid():06x}{next(ids):06x}"  # unique across restarts
                event.accept(message_id)
                line["answer"] = "ESME_ROK"
                line["message_id"] = message_id
                if event.registered_delivery & 0x03:
                    spawn(receipt(event, message_id))
                if replier and event.destination_addr == replier and (line["udh"] or {}).get("part", 1) == 1:
                    spawn(reply(event))
            write(line)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--receipt-delay", type=float, default=0.2)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--throttle-after", type=int, default=0, help="submits answered before throttling starts")
    parser.add_argument("--undeliverable-prefix", default="")
    parser.add_argument("--invalid-prefix", default="")
    parser.add_argument("--bind", choices=["transceiver", "transmitter_receiver"], default="transceiver")
    parser.add_argument("--mo", default="", help="SOURCE=TEXT: one MO message to the first receiving session")
    parser.add_argument("--reply", default="", help="NUMBER=TEXT: NUMBER replies TEXT to each message it is sent")
    return parser.parse_args()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main(_arguments()))
