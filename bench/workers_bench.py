"""Outbox workers scaling out on PostgreSQL (issue 16): one warning shared by 1 and then 2 worker processes.

    .venv/bin/python -m bench.workers_bench [--sms 10000] [--rate 100] [--counts 1,2]

Each run gets a fresh database in one throwaway PostgreSQL cluster (fsync on), seeded with `--sms` people with a
mobile number in one directory group, and a warning to them approved and issued (2 UCS-2 parts each). Then `k`
processes of `python -m broadcast.worker` (the product's own worker, channels from [channels] given by environment,
as an operator would run them) share it through `FOR UPDATE SKIP LOCKED`; time runs from the issue to every row
sent and to every receipt in. The SMSC is the test peer (tests/support/peers/smsc.py, its own process); each worker
holds its own bind, held to `--rate` submits/s in any second, the flow limit a carrier sets each connection it grants.

Printed: time and rate for each k, the ratio k workers / one, CPU of each worker and of the SMSC, how the rows fell
between the workers, and whether any destination got a message twice (from the SMSC's own record of every
submit_sm). `--rate 100000` takes the pace away: then the workers compete for the same 2 cores as the SMSC.
"""

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.warnings_bench import ROOT, Peers, cpu_seconds, prepare, settings, uptime
from tests.support.channel_peers import submit_records

POLL = 0.1  # how often an idle worker, and this bench, look at the delivery rows


def worker_environ(url: str, var_dir: Path, smsc_port: int, rate: float) -> dict[str, str]:
    """The worker's whole configuration, by environment: the database and one SMPP gateway."""
    return os.environ | {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
        "SWITCHBOARD_AUTH_TOKEN_SECRET": "bench-secret-not-for-production-0123456789",
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "SWITCHBOARD_WARNINGS_UNIT_AREA": "140100",
        "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",
        "SWITCHBOARD_CHANNELS_SMS_HOST": "127.0.0.1",
        "SWITCHBOARD_CHANNELS_SMS_PORT": str(smsc_port),
        "SWITCHBOARD_CHANNELS_SMS_SYSTEM_ID": "switchboard",
        "SWITCHBOARD_CHANNELS_SMS_PASSWORD": "secret",
        "SWITCHBOARD_CHANNELS_SMS_RATE_PER_SECOND": str(rate),
    }


def start_workers(k: int, environ: dict[str, str]) -> list[subprocess.Popen[str]]:
    """k workers, returned once each says it runs (its lanes started)."""
    workers = []
    for _ in range(k):
        argv = [sys.executable, "-m", "broadcast.worker", "--config", "/nonexistent.toml", "--poll", str(POLL)]
        workers.append(subprocess.Popen(argv, cwd=ROOT, env=environ, stderr=subprocess.PIPE, text=True))
    for worker in workers:
        assert worker.stderr is not None
        for line in worker.stderr:
            if "running:" in line:
                break
        else:
            raise SystemExit(f"worker exited ({worker.wait()}) before it ran")
    return workers


def stop(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(20)
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)


async def run(k: int, args: argparse.Namespace, peers: Peers, pg: str, tmp: Path) -> dict[str, Any]:
    from broadcast.models import Delivery
    from switchboard.core.context import Context
    from switchboard.warnings import flows as warnings
    from tests.support import throwaway_pg

    name = f"bench_workers_{k}"
    await throwaway_pg.create_database(pg, name)
    url, var_dir = f"{pg}/{name}", tmp / name
    var_dir.mkdir()
    warning_id, _ = await prepare(url, var_dir, args.sms, 0)
    workers = start_workers(k, worker_environ(url, var_dir, peers.smsc_port, args.rate))
    ctx = Context.from_settings(settings(var_dir, url))
    result: dict[str, Any] = {}
    try:
        cpu0 = [cpu_seconds(w.pid) for w in workers]
        smsc0, submits0 = peers.cpu().get("smsc", 0.0), peers.submits()
        began = time.perf_counter()
        _, result["deliveries"] = await warnings.issue(ctx, "alert_officer", warning_id, {"sms": {"status": "ok"}})
        result["issue_s"] = time.perf_counter() - began
        query = select(Delivery.state, func.count()).where(Delivery.warning_id == warning_id).group_by(Delivery.state)
        deadline = began + args.timeout
        while time.perf_counter() < deadline:
            await asyncio.sleep(POLL)
            async with ctx.db.reader() as session:
                counts = dict((await session.execute(query)).all())
            now = time.perf_counter() - began
            if "sent_s" not in result and not counts.get("pending") and not counts.get("sending"):
                result["sent_s"] = now
            if counts.get("delivered", 0) >= args.sms:
                result["receipts_s"] = now
                break
        result["counts"] = counts
        result["worker_cpu_s"] = [cpu_seconds(w.pid) - c for w, c in zip(workers, cpu0, strict=True)]
        result["smsc_cpu_s"] = peers.cpu().get("smsc", 0.0) - smsc0
        result["submit_sm"] = peers.submits() - submits0
        async with ctx.db.reader() as session:
            shares = select(Delivery.worker, func.count()).where(Delivery.warning_id == warning_id)
            result["rows_per_worker"] = sorted(n for _, n in (await session.execute(shares.group_by(Delivery.worker))))
    finally:
        stop(workers)
        await ctx.db.close()
    return result


def twice(record: Path) -> int:
    """Destinations that got more parts than one message has (2): a message sent twice."""
    parts = Counter((s["destination"], (s.get("udh") or {}).get("part", 1)) for s in submit_records(record))
    return sum(1 for n in parts.values() if n > 1)


async def orchestrate(args: argparse.Namespace) -> None:
    from tests.support import throwaway_pg

    before = uptime()
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        peers = stack.enter_context(Peers(tmp, args.receipt_delay))
        pg = stack.enter_context(throwaway_pg.cluster(durable=True))
        for k in args.counts:
            print(f"… {k} worker(s): seeding {args.sms:,} people, issuing", file=sys.stderr)
            peers.record.write_text("")
            results[k] = await run(k, args, peers, pg, tmp)
            results[k]["sent_twice"] = twice(peers.record)
    report(results, args, before, uptime())


def report(results: dict[int, dict[str, Any]], args: argparse.Namespace, before: str, after: str) -> None:
    print(
        f"\nOne warning to {args.sms:,} mobiles (2 UCS-2 parts), PostgreSQL, each worker its own SMPP bind held to"
        f" {args.rate:g} submits/s (a carrier's flow limit per connection); receipts {args.receipt_delay:g} s after"
        f" each part; {os.cpu_count()} cores"
    )
    loads = [text.partition("load average:")[2].strip() for text in (before, after)]
    print(f"load average: before [{loads[0]}]  after [{loads[1]}]")
    print(
        f"\n{'workers':>7} {'issue s':>8} {'sent s':>8} {'rcpt s':>8} {'SMS/s':>8} {'x one':>6} "
        f"{'CPU ms/SMS':>10} {'SMSC CPU s':>10} {'sent twice':>10}  rows per worker"
    )
    one = results.get(min(results))
    for k, r in sorted(results.items()):
        rate = args.sms / r["sent_s"] if r.get("sent_s") else 0.0
        base = args.sms / one["sent_s"] if one and one.get("sent_s") else 0.0
        cpu_ms = 1000 * sum(r["worker_cpu_s"]) / args.sms
        print(
            f"{k:>7} {r['issue_s']:8.2f} {r.get('sent_s', float('nan')):8.2f} {r.get('receipts_s', float('nan')):8.2f}"
            f" {rate:8.0f} {rate / base if base else 0:6.2f} {cpu_ms:10.2f} {r['smsc_cpu_s']:10.1f}"
            f" {r['sent_twice']:10}  {r['rows_per_worker']}"
        )
    for k, r in sorted(results.items()):
        print(f"{k} worker(s): {json.dumps({x: r[x] for x in ('counts', 'submit_sm', 'worker_cpu_s')})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sms", type=int, default=10_000, help="members with a mobile number")
    parser.add_argument("--rate", type=float, default=100.0, help="each worker's flow limit on its bind, submits/s")
    parser.add_argument("--counts", default="1,2", help="worker counts to run, in order")
    parser.add_argument("--receipt-delay", type=float, default=0.2, help="SMSC receipt delay, seconds")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on a run after this many seconds")
    args = parser.parse_args()
    args.counts = [int(k) for k in args.counts.split(",")]
    asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
