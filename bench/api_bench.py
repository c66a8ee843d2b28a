"""Incident API under load, SQLite beside PostgreSQL in one run; contact import of 10,000 rows.

    .venv/bin/python -m bench.api_bench [--requests 2000] [--concurrency 16] [--entries 100000]

The server runs as its own process (`switchboard serve`), one worker, as a duty room would run it; the load
comes from this process over loopback, sharing the machine's cores with the server, which is stated beside the
figures. PostgreSQL runs with fsync on, as SQLite runs with WAL and synchronous=NORMAL.
"""

import argparse
import asyncio
import csv
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from sqlalchemy import insert

from switchboard.core.db import Database, utcnow
from switchboard.core.divisions import all_divisions
from switchboard.incidents.models import TimelineEntry
from tests.support import throwaway_pg

ROOT = Path(__file__).resolve().parent.parent
SWITCHBOARD = str(ROOT / ".venv" / "bin" / "switchboard")
PASSWORD = "bench-password-1"
INCIDENT = {"title": "基准测试事件", "category": "accident_disaster", "level": "IV", "area_code": "140105"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(var_dir: Path, url: str, port: int = 8080) -> dict[str, str]:
    return os.environ | {
        "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_SERVER_PORT": str(port),
        "SWITCHBOARD_AUTH_ADMIN_PASSWORD": PASSWORD,
        "SWITCHBOARD_CONFIG": str(var_dir / "none.toml"),
        "SWITCHBOARD_ASTERISK_MODE": "off",
    }


async def seed_timeline(url: str, incident_id: str, count: int) -> None:
    db = Database(url)
    now = utcnow()
    rows = [
        dict(
            incident_id=incident_id,
            kind="note",
            type="note.added",
            at=now,
            actor="bench",
            summary=f"记录 {i}",
            data={"i": i},
            refs=[],
        )
        for i in range(count)
    ]
    async with db.session() as session:
        for start in range(0, count, 5000):
            await session.execute(insert(TimelineEntry), rows[start : start + 5000])
    await db.close()


async def measure(name: str, total: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


async def run_backend(url: str, var_dir: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    port = free_port()
    server = subprocess.Popen(
        [SWITCHBOARD, "serve"], env=server_env(var_dir, url, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            token = (await http.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORD})).json()
            http.headers["Authorization"] = f"Bearer {token['access_token']}"
            big = (await http.post("/api/v1/incidents", json=INCIDENT)).json()["id"]
            await seed_timeline(url, big, args.entries)

            async def create(i: int) -> None:
                response = await http.post("/api/v1/incidents", json=INCIDENT | {"title": f"基准测试事件 {i}"})
                assert response.status_code == 201, response.text

            async def read(i: int) -> None:
                after = random.randrange(args.entries)
                response = await http.get(f"/api/v1/incidents/{big}/timeline", params={"after": after, "limit": 100})
                assert response.status_code == 200 and response.json()["items"], response.text

            return {
                "create incident": await measure("create", args.requests, args.concurrency, create),
                "timeline page (100 of 100k)": await measure("read", args.requests * 2, args.concurrency, read),
            }
    finally:
        server.terminate()
        server.wait(10)


def contacts_csv(count: int) -> bytes:
    counties = [d for d in all_divisions().values() if d.level == "county"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["organisation", "department", "name", "title", "roles", "office_phone", "mobile", "email", "groups"]
    )
    for i in range(count):
        county = counties[i % len(counties)]
        writer.writerow(
            [
                county.code,
                "应急管理局",
                f"联络员{i:05d}",
                "值班员",
                "值班员",
                f"0351-{7000000 + i}",
                f"139{i:08d}",
                f"duty{i}@example.org",
                f"{county.name}值班组",
            ]
        )
    return out.getvalue().encode("utf-8")


def run_import(url: str, var_dir: Path, count: int) -> dict[str, float]:
    path = var_dir / "contacts.csv"
    path.write_bytes(contacts_csv(count))
    env = server_env(var_dir, url)
    subprocess.run([SWITCHBOARD, "user", "--help"], env=env, check=True, capture_output=True)  # warm imports
    start = time.perf_counter()
    child = subprocess.Popen(
        [SWITCHBOARD, "directory", "import", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the server's
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {child.stdout.read().decode() if child.stdout else ''}")
    return {"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    imports: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        pg = stack.enter_context(throwaway_pg.cluster(durable=True))
        for backend in ("sqlite", "postgresql"):
            var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{backend}-")))
            if backend == "sqlite":
                url, import_url = f"sqlite+aiosqlite:///{var_dir}/a.db", f"sqlite+aiosqlite:///{var_dir}/b.db"
            else:
                for name in ("bench_api", "bench_import"):
                    await throwaway_pg.create_database(pg, name)
                url, import_url = f"{pg}/bench_api", f"{pg}/bench_import"
            print(f"… {backend}: load", file=sys.stderr)
            results[backend] = await run_backend(url, var_dir, args)
            print(f"… {backend}: import {args.contacts} contacts", file=sys.stderr)
            imports[backend] = run_import(import_url, var_dir, args.contacts)
    print_report(results, imports, args)


def print_report(results: dict, imports: dict, args: argparse.Namespace) -> None:
    print(
        f"\nIncident API, {args.entries:,} timeline entries in one incident, {args.concurrency} concurrent clients, "
        f"{os.cpu_count()} cores shared by server, database and load generator"
    )
    print(f"{'operation':30} {'backend':11} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for operation in results["sqlite"]:
        for backend in ("sqlite", "postgresql"):
            r = results[backend][operation]
            print(f"{operation:30} {backend:11} {r['rps']:8.0f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
        ratio = results["postgresql"][operation]["rps"] / results["sqlite"][operation]["rps"]
        print(f"{'':30} {'pg/sqlite':11} {ratio:8.2f}")
    print(f"\nContact import, {args.contacts:,} rows CSV (`switchboard directory import`, whole process)")
    print(f"{'backend':11} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>12}")
    for backend, r in imports.items():
        print(f"{backend:11} {r['seconds']:8.1f} {args.contacts / r['seconds']:8.0f} {r['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    asyncio.run(main())
