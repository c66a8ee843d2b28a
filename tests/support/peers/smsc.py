"""A test SMSC on smpp34's SMPP 3.4 server (a third-party implementation, Rust core), run as its own process.

    python -m tests.support.peers.smsc --port P --record submits.jsonl [--receipt-delay 0.2] [--throttle-first N]

It accepts binds, answers every submit_sm, and records each one as a JSON line (source, destination,
data_coding, esm_class, UDH ref/part/total, short_message hex, what it answered). Accepted messages get a
delivery receipt (deliver_sm, esm_class 0x04, appendix B text plus the receipted_message_id and message_state
TLVs) `--receipt-delay` seconds later, never instantly: a real SMSC takes time, and an instant receipt races
the client's id mapping. Knobs: `--throttle-first N` answers ESME_RTHROTTLED to the first N submits
(after the first `--throttle-after` M);
destinations starting with `--undeliverable-prefix` get stat:UNDELIV; those starting with `--invalid-prefix`
are refused with ESME_RINVDSTADR. It prints `READY` once listening.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import time

import smpp34

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
    pending: set[asyncio.Task] = set()
    record = open(args.record, "a", buffering=1)  # noqa: SIM115  (one line per submit, flushed)

    async def receipt(session_id: str, source: str, destination: str, message_id: str) -> None:
        await asyncio.sleep(args.receipt_delay)
        esme = esmes.get(session_id)
        if esme is None:
            return
        undeliverable = args.undeliverable_prefix and destination.startswith(args.undeliverable_prefix)
        stat, state = ("UNDELIV", STATE_UNDELIVERABLE) if undeliverable else ("DELIVRD", STATE_DELIVERED)
        now = time.strftime("%y%m%d%H%M")
        text = f"id:{message_id} sub:001 dlvrd:{0 if undeliverable else 1:03d} submit date:{now} done date:{now}"
        text += f" stat:{stat} err:{'001' if undeliverable else '000'} text:"
        with contextlib.suppress(Exception):
            await esme.deliver_sm(
                source,
                text.encode(),
                source_addr=destination,
                esm_class=0x04,
                tlvs=[
                    smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
                    smpp34.Tlv(TLV_MESSAGE_STATE, bytes([state])),
                ],
            )

    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            esmes[event.session_id] = event
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
            if throttle:
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
                    task = asyncio.create_task(
                        receipt(event.session_id, event.source_addr, event.destination_addr, message_id)
                    )
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            record.write(json.dumps(line) + "\n")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--receipt-delay", type=float, default=0.2)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--throttle-after", type=int, default=0, help="submits answered before throttling starts")
    parser.add_argument("--undeliverable-prefix", default="")
    parser.add_argument("--invalid-prefix", default="")
    return parser.parse_args()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main(_arguments()))
