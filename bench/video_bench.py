"""Video consultation (issue 7): sites per room at 640x480, Janus against an aiortc-only relay in the same run.

    python -m bench.video_bench [--sites 2,3,4] [--window 10]

For each room size N, N headless Chromium pages (Debian chromium, fake 640x480 camera, one browser process) join
a room and receive every other site:
- Janus: the real product path: Switchboard's API creates the consultation and invites, each page is the join
  page (/consult/{id}), Janus's VideoRoom forwards the streams (no transcoding).
- aiortc relay (bench/aiortc_relay.py): each page publishes to a small aiortc SFU and receives the others through
  aiortc's MediaRelay (which decodes and re-encodes per receiver).
Both run in the same private network namespace as the tests (tests/support/janus_fixture.py), one after the other in the
same run. Measured over --window seconds once every page decodes every other site: the server's CPU
(/proc/<pid>/stat utime+stime, % of one core) per site, the received frame rate (framesDecoded per second,
averaged over every received stream), and the browser host's load (all chromium processes' CPU, load average):
the browsers share this machine's 2 cores with the server, so their load bounds what either server can show.
"""

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from conference.video.engine import Engine
from switchboard.api.app import create_app
from switchboard.auth.models import Role
from switchboard.auth.service import add_user, issue_token
from switchboard.core import config
from switchboard.core.context import Context
from tests.support.janus_fixture import (
    CHROMIUM_FLAGS,
    JanusHarness,
    chromium_wrapper,
    engine_settings,
    make_netns,
    stop,
)

RELAY_PORT = 9000
PAGE_PORT = 8080
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def chromium_seconds() -> float:
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if "(chromium)" in text or "(chrome)" in text:
                total += cpu_seconds(int(stat.parent.name))
    return total


async def frames(pages: list[Page]) -> list[dict[str, int]]:
    return [await p.evaluate("window.consultStats()") for p in pages]


async def until_decoding(pages: list[Page], n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = await frames(pages)
        if all(len(f) >= n - 1 and all(v > 0 for v in f.values()) for f in now):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every page decodes every other site: {now}")
        await asyncio.sleep(0.5)


async def measure(pages: list[Page], server_pid: int, n: int, window: float) -> dict[str, float]:
    await asyncio.sleep(3)  # let the bitrate ramp up
    before, cpu0, chrome0, t0 = await frames(pages), cpu_seconds(server_pid), chromium_seconds(), time.monotonic()
    await asyncio.sleep(window)
    after, cpu1, chrome1, t1 = await frames(pages), cpu_seconds(server_pid), chromium_seconds(), time.monotonic()
    elapsed = t1 - t0
    rates = [(a[k] - b.get(k, 0)) / elapsed for b, a in zip(before, after, strict=True) for k in a]
    return {
        "server_cpu_per_site": (cpu1 - cpu0) / elapsed * 100 / n,
        "fps": sum(rates) / len(rates),
        "streams": len(rates),
        "browser_cpu": (chrome1 - chrome0) / elapsed * 100,
        "load": os.getloadavg()[0],
    }


async def janus_round(http: httpx.AsyncClient, headers: dict[str, str], browser: Browser, n: int) -> list[Page]:
    body = {"title": f"基准 {n} 方", "max_sites": max(n, 2)}
    cid = (await http.post("/api/v1/consultations", json=body, headers=headers)).json()["id"]
    invitees = {"invitees": [{"site": f"站点{i + 1}"} for i in range(n)]}
    invites = (await http.post(f"/api/v1/consultations/{cid}/invites", json=invitees, headers=headers)).json()
    pages = []
    for invite in invites:
        page = await (await browser.new_context()).new_page()
        await page.goto(invite["url"])
        await page.click("#join-button")
        await page.wait_for_selector("body[data-state=joined]", timeout=30_000)
        pages.append(page)
    return pages


async def relay_round(browser: Browser, n: int) -> list[Page]:
    pages = []
    for _ in range(n):
        page = await (await browser.new_context()).new_page()
        await page.goto(f"http://127.0.0.1:{RELAY_PORT}/")
        pages.append(page)
    await asyncio.gather(*(p.evaluate(f"run({n})") for p in pages))
    return pages


async def close(pages: list[Page]) -> None:
    for page in pages:
        await page.context.close()


async def run(sizes: list[int], window: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    holder, netns = make_netns()
    processes: list[subprocess.Popen[bytes]] = []
    engine = Engine(engine_settings(work / "janus", netns))
    try:
        await engine.start()
        assert engine.process is not None
        wrapper = chromium_wrapper(work, netns)
        harness = JanusHarness(netns, engine, work, wrapper, 0)
        env = harness.environ | {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}"}
        settings = config.load(path=work / "absent.toml", environ=env | {
            "SWITCHBOARD_PATHS_VAR_DIR": str(work / "app"), "SWITCHBOARD_ASTERISK_MODE": "off",
            "SWITCHBOARD_AUTH_TOKEN_SECRET": "bench-secret-0123456789-0123456789"})  # fmt: skip
        ctx = Context.from_settings(settings)
        app = create_app(ctx)
        results: dict[tuple[str, int], dict[str, float]] = {}
        async with app.router.lifespan_context(app):
            await app.state.services.video.session.wait_up(10)
            user = await add_user(ctx, "bench", "bench", "bench-password", [Role.duty_officer])
            headers = {"Authorization": f"Bearer {issue_token(settings, user)}"}
            sock = work / "app.sock"
            server = uvicorn.Server(uvicorn.Config(app, uds=str(sock), lifespan="off", log_level="warning"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            python = sys.executable
            forward = harness.popen([python, "-m", "tests.support.peers.forward", f"127.0.0.1:{PAGE_PORT}", str(sock)],
                                    stdout=subprocess.PIPE)  # fmt: skip
            processes.append(forward)
            await asyncio.to_thread(forward.stdout.readline)  # type: ignore[union-attr]
            await asyncio.sleep(2)
            transport = httpx.ASGITransport(app)
            async with (
                httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{PAGE_PORT}") as http,
                async_playwright() as pw,
            ):
                browser = await pw.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_FLAGS)
                for n in sizes:
                    pages = await janus_round(http, headers, browser, n)
                    await until_decoding(pages, n)
                    results["janus", n] = await measure(pages, engine.process.pid, n, window)
                    await close(pages)
                    print_row("janus", n, results["janus", n])
                    relay = harness.popen([python, "-m", "bench.aiortc_relay", "127.0.0.1", str(RELAY_PORT)])
                    await asyncio.sleep(2)
                    try:
                        pages = await relay_round(browser, n)
                        await until_decoding(pages, n)
                        results["relay", n] = await measure(pages, relay.pid, n, window)
                        print_row("aiortc relay", n, results["relay", n])
                        await close(pages)
                    except RuntimeError as exc:
                        print(f"aiortc relay  {n} sites: {exc}")
                    finally:
                        stop(relay)
                await browser.close()
            server.should_exit = True
            await serving
        await ctx.db.close()
        print("\nratio (aiortc relay / Janus), server CPU per site:")
        for n in sizes:
            if ("relay", n) in results:
                j, r = results["janus", n], results["relay", n]
                ratio = r["server_cpu_per_site"] / max(j["server_cpu_per_site"], 0.01)
                print(f"  {n} sites: {ratio:.1f}x  (fps Janus {j['fps']:.1f}, relay {r['fps']:.1f})")
    finally:
        for process in processes:
            stop(process)
        await engine.stop()
        stop(holder)


def print_row(name: str, n: int, r: dict[str, Any]) -> None:
    print(
        f"{name:13} {n} sites: server CPU {r['server_cpu_per_site']:5.1f}% of a core per site, "
        f"received {r['fps']:4.1f} fps over {r['streams']} streams; browsers {r['browser_cpu']:5.0f}% CPU, "
        f"load {r['load']:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="2,3,4")
    parser.add_argument("--window", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(run([int(s) for s in args.sites.split(",")], args.window))
