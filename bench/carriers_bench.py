"""Three carriers (issue 17): one warning to `--sms` mobiles spread over China Mobile, China Unicom and China Telecom
by number segment, each through its carrier's gateway at the rate the carrier grants.

    .venv/bin/python -m bench.carriers_bench [--sms 10000] [--caps 300,100,100] [--pg]

Peers, each its own process written from its protocol's spec: a CMPP 3.0 ISMG (tests/support/peers/ismg.py) for
139..., an SGIP 1.2 gateway (sgip_gateway.py) for 130..., an SMGP 3.0 gateway (smgp_gateway.py) for 189.... Each
enforces its flow limit (`--max-rate`: submits beyond `cap` in any one second are refused with the protocol's
flow-control code) and reports each part `--receipt-delay` seconds after accepting it. The numbers are split in
proportion to the caps, so that all three could finish together. Switchboard runs as deployed: `[channels]` from
the environment (three gateways behind the carrier router, each paced at its cap), the warning issued and sent by
the outbox until every receipt is in.

Printed: per gateway the messages, submits the peer saw (refusals resubmitted make more than 2 per message), the
time its last receipt came and its rate against its cap; overall the time to all receipts against the ideal (every
part at the sum of the caps), the rate as a share of the sum of the ceilings, and CPU per message (this process,
and each peer).
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.warnings_bench import cpu_seconds, free_port, prepare, uptime
from tests.support.channel_peers import Smsc

CARRIERS = (  # gateway name, carrier, number segment, peer module
    ("cmpp", "mobile", "139", "tests.support.peers.ismg"),
    ("sgip", "unicom", "130", "tests.support.peers.sgip_gateway"),
    ("smgp", "telecom", "189", "tests.support.peers.smgp_gateway"),
)
CMPP = {"source_addr": "901234", "secret": "Sw1tchb0ard"}  # the SP id and secret the ISMG issued


class Gateway(Smsc):
    """One carrier's gateway process."""

    def __init__(self, tmp: Path, module: str, **options: object) -> None:
        self.module = module
        super().__init__(tmp, **options)

    def submit_count(self) -> int:
        lines = [json.loads(line) for line in self.record.read_text().splitlines()]
        return sum(1 for line in lines if line.get("pdu", "SUBMIT") == "SUBMIT" and "event" not in line)


def environ(url: str, var_dir: Path, gateways: dict[str, Gateway], caps: dict[str, float], sgip_sp_port: int) -> dict:
    cmpp, sgip, smgp = gateways["cmpp"], gateways["sgip"], gateways["smgp"]
    return {
        "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_AUTH_TOKEN_SECRET": "bench-secret-not-for-production-0123456789",
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "SWITCHBOARD_WARNINGS_UNIT_AREA": "140100",
        "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",
        "SWITCHBOARD_CHANNELS_SMS_ROUTES": "mobile=cmpp,unicom=sgip,telecom=smgp",
        "SWITCHBOARD_CHANNELS_SMS_DEFAULT_ROUTE": "cmpp",
        "SWITCHBOARD_CHANNELS_CMPP_HOST": "127.0.0.1",
        "SWITCHBOARD_CHANNELS_CMPP_PORT": str(cmpp.port),
        "SWITCHBOARD_CHANNELS_CMPP_SOURCE_ADDR": CMPP["source_addr"],
        "SWITCHBOARD_CHANNELS_CMPP_SECRET": CMPP["secret"],
        "SWITCHBOARD_CHANNELS_CMPP_SRC_ID": "1237901",
        "SWITCHBOARD_CHANNELS_CMPP_SERVICE_ID": "YJYJ",
        "SWITCHBOARD_CHANNELS_CMPP_RATE_PER_SECOND": str(caps["cmpp"]),
        "SWITCHBOARD_CHANNELS_SGIP_HOST": "127.0.0.1",
        "SWITCHBOARD_CHANNELS_SGIP_PORT": str(sgip.port),
        "SWITCHBOARD_CHANNELS_SGIP_LOGIN_NAME": "sb",
        "SWITCHBOARD_CHANNELS_SGIP_PASSWORD": "secret",
        "SWITCHBOARD_CHANNELS_SGIP_SP_NUMBER": "1065512379",
        "SWITCHBOARD_CHANNELS_SGIP_CORP_ID": "12345",
        "SWITCHBOARD_CHANNELS_SGIP_NODE_ID": "3010012345",
        "SWITCHBOARD_CHANNELS_SGIP_LISTEN_HOST": "127.0.0.1",
        "SWITCHBOARD_CHANNELS_SGIP_LISTEN_PORT": str(sgip_sp_port),
        "SWITCHBOARD_CHANNELS_SGIP_LISTEN_LOGIN_NAME": "smg",
        "SWITCHBOARD_CHANNELS_SGIP_LISTEN_PASSWORD": "smgsecret",
        "SWITCHBOARD_CHANNELS_SGIP_RATE_PER_SECOND": str(caps["sgip"]),
        "SWITCHBOARD_CHANNELS_SMGP_HOST": "127.0.0.1",
        "SWITCHBOARD_CHANNELS_SMGP_PORT": str(smgp.port),
        "SWITCHBOARD_CHANNELS_SMGP_CLIENT_ID": "sb",
        "SWITCHBOARD_CHANNELS_SMGP_SECRET": "secret",
        "SWITCHBOARD_CHANNELS_SMGP_SRC_TERM_ID": "1065912379",
        "SWITCHBOARD_CHANNELS_SMGP_RATE_PER_SECOND": str(caps["smgp"]),
    }


def split(n: int, caps: dict[str, float]) -> list[str]:
    """The i-th person's gateway: numbers in proportion to the caps, interleaved."""
    total = sum(caps.values())
    order: list[str] = []
    credit = dict.fromkeys(caps, 0.0)
    for _ in range(n):
        for name in credit:
            credit[name] += caps[name] / total
        chosen = max(credit, key=lambda name: credit[name])
        credit[chosen] -= 1
        order.append(chosen)
    return order


async def run(args: argparse.Namespace) -> None:
    from broadcast.channels import from_settings
    from broadcast.models import Delivery
    from broadcast.outbox import Outbox, OutboxSettings
    from switchboard.core import config
    from switchboard.core.context import Context
    from switchboard.warnings import flows as warnings
    from tests.support import throwaway_pg

    caps = dict(zip((c[0] for c in CARRIERS), args.caps, strict=True))
    segment = {name: prefix for name, _, prefix, _ in CARRIERS}
    owner = split(args.sms, caps)
    before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-carriers-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        sp_port = free_port()
        gateways: dict[str, Gateway] = {}
        for gateway, _, _, module in CARRIERS:
            options: dict[str, object] = {"max_rate": caps[gateway]}
            if gateway == "cmpp":
                options |= CMPP | {"report_delay": args.receipt_delay}
            else:
                options |= {"receipt_delay": args.receipt_delay}
            if gateway == "sgip":
                options |= {"sp_port": sp_port}
            peer = gateways[gateway] = Gateway(tmp, module, **options)
            peer.start()
            stack.callback(peer.kill)
        if args.pg:
            pg = stack.enter_context(throwaway_pg.cluster(durable=True))
            await throwaway_pg.create_database(pg, "bench_carriers")
            url = f"{pg}/bench_carriers"
        else:
            url = f"sqlite+aiosqlite:///{tmp}/switchboard.db"
        print(f"… seeding {args.sms:,} people over three carriers", file=sys.stderr)
        warning_id, _ = await prepare(url, tmp, args.sms, 0, lambda i: f"{segment[owner[i]]}{i:08d}")
        settings = config.load(tmp / "absent.toml", environ=environ(url, tmp, gateways, caps, sp_port))
        ctx = Context.from_settings(settings)
        outbox = Outbox(ctx, from_settings(settings), OutboxSettings.configured(settings))
        await outbox.start()
        try:
            deadline = time.monotonic() + 20
            while outbox.health()["sms"]["status"] != "ok":
                if time.monotonic() > deadline:
                    raise SystemExit(f"gateways not up: {outbox.health()['sms']}")
                await asyncio.sleep(0.1)
            peers0 = {g: cpu_seconds(p.process.pid) for g, p in gateways.items() if p.process}
            cpu0, began = time.process_time(), time.perf_counter()
            await warnings.issue(ctx, "alert_officer", warning_id, outbox.health())
            outbox.wake()
            states = (
                select(Delivery.via, Delivery.state, func.count())
                .where(Delivery.warning_id == warning_id)
                .group_by(Delivery.via, Delivery.state)
            )
            shown = 0.0
            while time.perf_counter() - began < args.timeout:
                await asyncio.sleep(0.25)
                async with ctx.db.reader() as session:
                    counts = (await session.execute(states)).all()
                if sum(n for _, state, n in counts if state in ("delivered", "failed")) >= args.sms:
                    break
                if time.perf_counter() - shown >= 5:
                    shown = time.perf_counter()
                    progress = ", ".join(f"{via or '-'} {state} {n}" for via, state, n in sorted(counts))
                    print(f"… {shown - began:5.0f} s: {progress}", file=sys.stderr)
            wall = time.perf_counter() - began
            cpu = time.process_time() - cpu0
            peer_cpu = {g: cpu_seconds(p.process.pid) - peers0[g] for g, p in gateways.items() if p.process}
            async with ctx.db.reader() as session:
                rows = (
                    await session.execute(
                        select(Delivery.via, Delivery.state, func.count(), func.max(Delivery.delivered_at))
                        .where(Delivery.warning_id == warning_id)
                        .group_by(Delivery.via, Delivery.state)
                    )
                ).all()
                issued_at = (await warnings.listed(ctx, None, None, 1))[0].issued_at
                failures = (
                    await session.execute(
                        select(Delivery.via, Delivery.last_error, func.count())
                        .where(Delivery.warning_id == warning_id, Delivery.state == "failed")
                        .group_by(Delivery.via, Delivery.last_error)
                    )
                ).all()
        finally:
            await outbox.stop()
            await ctx.db.close()
        report(args, caps, gateways, rows, issued_at, wall, cpu, peer_cpu, before)
        for via, error, n in failures:
            print(f"failed via {via or '-'} ({n}): {error}")


def report(
    args: argparse.Namespace,
    caps: dict[str, float],
    gateways: dict[str, Any],
    rows: list[Any],
    issued_at: Any,
    wall: float,
    cpu: float,
    peer_cpu: dict[str, float],
    before: str,
) -> None:
    parts = 2  # the warning's SMS is two UCS-2 parts
    ideal = args.sms * parts / sum(caps.values())
    loads = [text.partition("load average:")[2].strip() for text in (before, uptime())]
    print(
        f"\nOne warning to {args.sms:,} mobiles ({parts} UCS-2 parts each) over three carriers; receipts"
        f" {args.receipt_delay:g} s after each part; {'PostgreSQL' if args.pg else 'SQLite'}; {os.cpu_count()} cores"
    )
    print(f"load average: before [{loads[0]}]  after [{loads[1]}]\n")
    heads = f"{'gateway':8} {'cap/s':>6} {'messages':>9} {'submits':>8} {'last rcpt s':>11} {'submits/s':>9}"
    print(f"{heads} {'x cap':>6}")
    for gateway, carrier, prefix, _ in CARRIERS:
        mine = [r for r in rows if r.via == gateway]
        messages = sum(r[2] for r in mine)
        last = max((r[3] for r in mine if r[3] is not None), default=None)
        seconds = (last - issued_at).total_seconds() if last else float("nan")
        rate = messages * parts / seconds if last else 0.0
        submits = gateways[gateway].submit_count()
        print(
            f"{gateway:8} {caps[gateway]:6.0f} {messages:9,} {submits:8,} {seconds:11.1f} {rate:9.0f}"
            f" {rate / caps[gateway]:6.2f}   ({carrier}, {prefix}…)"
        )
    states: dict[str, int] = {}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + row[2]
    print(
        f"\nall receipts in {wall:.1f} s; ideal at the sum of the caps ({sum(caps.values()):.0f} submits/s):"
        f" {ideal:.1f} s; achieved {ideal / wall:.2f} of the ceilings' sum"
    )
    print(f"states: {states}")
    per = {g: f"{1000 * s / args.sms:.2f}" for g, s in peer_cpu.items()}
    print(f"CPU per message: switchboard {1000 * cpu / args.sms:.2f} ms; peers (ms per message of all) {per}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sms", type=int, default=10_000, help="recipients, over the three carriers")
    parser.add_argument("--caps", default="300,100,100", help="submits/s granted by China Mobile, Unicom, Telecom")
    parser.add_argument("--receipt-delay", type=float, default=0.2, help="each gateway's report delay, seconds")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (fsync on) instead of SQLite")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    args.caps = [float(c) for c in args.caps.split(",")]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
