"""One real Janus per test run, in a private network namespace (Janus never gathers loopback candidates): the
namespace holds `lo` and a veth pair with 10.99.0.1/32; Janus announces that address; Chromium, camera feeds and
the test camera run inside it too (through nsenter), and reach the control plane (serving outside, on a Unix
socket) through a small forwarder listening inside. The control plane drives Janus over its Unix-socket API,
which needs no network at all. Phone audio does: Asterisk runs on the host and sends RTP to Janus's AudioBridge,
so (run as root) a second veth pair joins the host and the namespace, a /32 at each end (10.98.N.1 on the host,
10.98.N.2 inside, N from this process's id so that parallel runs do not collide) and a route each way; the
AudioBridge binds its plain-RTP sockets to the inner address (`[janus] phone_address`). Use it as the `janus`
fixture."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from conference.video.engine import Engine, admin_key, in_netns
from switchboard.core import config
from tests.support.wait import until_sync

INTERFACE = "vj0"
ADDRESS = "10.99.0.1"
PAGE_PORT = 8080  # where the forwarder inside listens for the browsers
CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # else host candidates hide behind mDNS names
]


def _say(message: str) -> None:
    print(f"[janus] {message}", file=sys.__stderr__, flush=True)


@dataclass(frozen=True)
class HostLink:
    """The veth pair between the host (where Asterisk runs) and the namespace: phone RTP crosses it."""

    host_interface: str
    host_address: str
    inner_address: str  # Janus's AudioBridge sockets: where Asterisk sends


def host_link_for(pid: int) -> HostLink:
    n = pid % 250 + 1
    return HostLink(f"sbrtp{n}", f"10.98.{n}.1", f"10.98.{n}.2")


@dataclass
class JanusHarness:
    netns: str
    engine: Engine
    var_dir: Path
    chromium: Path  # a wrapper running Debian's chromium inside the namespace
    boot_seconds: float
    host_link: HostLink | None  # None when not run as root: no phone audio then

    @property
    def environ(self) -> dict[str, str]:
        """Settings for an app that drives this Janus (mode external)."""
        return {
            "SWITCHBOARD_JANUS_MODE": "external",
            "SWITCHBOARD_JANUS_API_SOCKET": str(self.engine.layout.api_socket),
            "SWITCHBOARD_JANUS_NETNS": self.netns,
            "SWITCHBOARD_JANUS_KEEPALIVE_SECONDS": "5",
            "SWITCHBOARD_JANUS_ADMIN_KEY": admin_key(self.engine.settings),
            "SWITCHBOARD_JANUS_PHONE_ADDRESS": self.engine.settings.janus.phone_address,
        }

    def popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """A process inside the namespace."""
        return subprocess.Popen(in_netns(self.netns, argv), start_new_session=True, **kwargs)  # type: ignore[call-overload]


def make_netns() -> tuple[subprocess.Popen[bytes], str]:
    """A network namespace with lo and a veth holding ADDRESS: the holder process (stop it to end it), its path."""
    prefix = [] if os.geteuid() == 0 else ["-r"]
    holder = subprocess.Popen(["unshare", *prefix, "-n", "--", "sleep", "infinity"], start_new_session=True)
    path = f"/proc/{holder.pid}/ns/net"
    own = os.readlink("/proc/self/ns/net")
    until_sync(lambda: os.readlink(path) != own, timeout=10, what="unshare to enter its new network namespace")
    script = (
        f"ip link set lo up && ip link add {INTERFACE} type veth peer name {INTERFACE}p && "
        f"ip addr add {ADDRESS}/32 dev {INTERFACE} && ip link set {INTERFACE} up && ip link set {INTERFACE}p up"
    )
    subprocess.run(in_netns(path, ["sh", "-c", script]), check=True)
    return holder, path


def link_host(holder: subprocess.Popen[bytes], netns: str, link: HostLink) -> None:
    """The veth pair between the host and the namespace of `holder` (removed with the namespace)."""
    inner = "vr0"
    subprocess.run(["ip", "link", "del", link.host_interface], stderr=subprocess.DEVNULL, check=False)  # a stale one
    host = (
        f"ip link add {link.host_interface} type veth peer name {inner} netns {holder.pid} && "
        f"ip addr add {link.host_address}/32 dev {link.host_interface} && ip link set {link.host_interface} up && "
        f"ip route add {link.inner_address}/32 dev {link.host_interface}"
    )
    subprocess.run(["sh", "-c", host], check=True)
    ns = (
        f"ip addr add {link.inner_address}/32 dev {inner} && ip link set {inner} up && "
        f"ip route add {link.host_address}/32 dev {inner}"
    )
    subprocess.run(in_netns(netns, ["sh", "-c", ns]), check=True)


def engine_settings(var_dir: Path, netns: str, link: HostLink | None = None) -> config.Settings:
    """Settings of a Janus in the namespace `netns`, its files under `var_dir`."""
    phones = {"SWITCHBOARD_JANUS_PHONE_ADDRESS": link.inner_address} if link else {}
    return config.load(
        path=var_dir / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
            "SWITCHBOARD_JANUS_NETNS": netns,
            "SWITCHBOARD_JANUS_INTERFACE": INTERFACE,
            "SWITCHBOARD_JANUS_ADDRESS": ADDRESS,
            **phones,
        },
    )


def chromium_wrapper(var_dir: Path, netns: str) -> Path:
    """An executable running Debian's chromium inside `netns` (Playwright's `executable_path`)."""
    wrapper = var_dir / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter --net={netns} -- {CHROMIUM or "/usr/bin/chromium"} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest_asyncio.fixture(scope="session")
async def janus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JanusHarness]:
    if shutil.which("janus") is None or os.geteuid() != 0 and shutil.which("newuidmap") is None:
        pytest.skip("janus (Debian) or namespaces not available: scripts/setup installs janus")
    var_dir = tmp_path_factory.mktemp("janus")
    started = time.monotonic()
    holder, netns = await asyncio.to_thread(make_netns)
    link = host_link_for(os.getpid()) if os.geteuid() == 0 else None
    if link is not None:
        await asyncio.to_thread(link_host, holder, netns, link)
    settings = engine_settings(var_dir, netns, link)
    engine = Engine(settings)
    try:
        await engine.start()
        boot = time.monotonic() - started
        _say(f"namespace and Janus ready in {boot:.2f} s")
        yield JanusHarness(netns, engine, var_dir, chromium_wrapper(var_dir, netns), boot, link)
    finally:
        await engine.stop()
        stop(holder)
