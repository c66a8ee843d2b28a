"""The Asterisk runtime: a system Asterisk 22+ when there is one, else a cached Debian unstable root.

Debian 12 ships no Asterisk 22, Debian unstable does. We build a minimal sid root once with debootstrap,
install `asterisk` and `asterisk-modules` into it, and run its binaries from the host through the root's own
dynamic loader (no chroot at run time, see ENGINES.md). The build goes into a temporary directory beside the
final one and is renamed into place only after a stamp file records success, so an interrupted build is never
mistaken for a finished one.
"""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.core.config import Settings

log = logging.getLogger(__name__)

STAMP = ".switchboard-provisioned"
MIN_MAJOR = 22
PACKAGES = ("asterisk", "asterisk-modules")
DEFAULT_ROOT = Path("~/.cache/switchboard/asterisk")

# (Debian multiarch triplet, dynamic loader file name) per machine.
_ARCH = {
    "x86_64": ("x86_64-linux-gnu", "ld-linux-x86-64.so.2"),
    "aarch64": ("aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
}

Progress = Callable[[str, str], None]
"""progress(step, detail): step is one of check, debootstrap, update, install, verify, done."""


class ProvisionError(Exception):
    """Provisioning failed; the message is meant for the operator (zh-CN)."""


@dataclass(frozen=True)
class AsteriskRuntime:
    """Where the Asterisk binaries and data live, and how to run them."""

    binary: Path
    command_prefix: tuple[str, ...]
    """argv prefix that runs `asterisk`: the root's loader and library path, or just the system binary."""
    modules_dir: Path
    data_dir: Path
    """Asterisk's shipped data (documentation XML, sounds, moh, keys), linked into the engine's astdatadir."""
    sounds_dir: Path
    version: str
    root: Path | None = None
    """The provisioned root, or None for a system Asterisk."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment additions the command needs (GCONV_PATH into the root)."""

    @property
    def major(self) -> int:
        return _major(self.version) or 0

    def command(self, *args: str) -> list[str]:
        return [*self.command_prefix, *args]

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def root_path(settings: Settings) -> Path:
    return Path(settings.asterisk.root_dir or DEFAULT_ROOT).expanduser().resolve()


def _major(version: str) -> int | None:
    match = re.search(r"(\d+)\.\d+", version)
    return int(match.group(1)) if match else None


def _arch() -> tuple[str, str]:
    machine = platform.machine()
    if machine not in _ARCH:
        raise ProvisionError(f"不支持的处理器架构 {machine}")
    return _ARCH[machine]


def _root_runtime(root: Path, version: str) -> AsteriskRuntime:
    triplet, loader = _arch()
    lib = root / "usr/lib" / triplet
    binary = root / "usr/sbin/asterisk"
    return AsteriskRuntime(
        binary=binary,
        command_prefix=(str(lib / loader), "--library-path", str(lib), str(binary)),
        modules_dir=lib / "asterisk/modules",
        data_dir=root / "usr/share/asterisk",
        sounds_dir=root / "usr/share/asterisk/sounds/en_US_f_Allison",
        version=version,
        root=root,
        env={"GCONV_PATH": str(lib / "gconv")},
    )


def _system_runtime() -> AsteriskRuntime | None:
    """A system Asterisk 22+ on PATH, if any (version read with `asterisk -V`, which needs no daemon)."""
    binary = shutil.which("asterisk")
    if not binary:
        return None
    import subprocess

    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if (_major(out) or 0) < MIN_MAJOR:
        return None
    triplet, _ = _arch()
    modules = next(
        (p for p in (Path("/usr/lib", triplet, "asterisk/modules"), Path("/usr/lib/asterisk/modules")) if p.is_dir()),
        Path("/usr/lib/asterisk/modules"),
    )
    sounds_base = Path("/usr/share/asterisk/sounds")
    sounds = next((p for p in (sounds_base / "en_US_f_Allison", sounds_base / "en") if p.is_dir()), sounds_base / "en")
    return AsteriskRuntime(
        binary=Path(binary),
        command_prefix=(binary,),
        modules_dir=modules,
        data_dir=sounds_base.parent,
        sounds_dir=sounds,
        version=out.removeprefix("Asterisk ").strip(),
    )


def find_runtime(settings: Settings) -> AsteriskRuntime | None:
    """The runtime to use without building anything: system Asterisk 22+, else a finished provisioned root."""
    system = _system_runtime()
    if system is not None:
        return system
    root = root_path(settings)
    try:
        stamp = json.loads((root / STAMP).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    runtime = _root_runtime(root, stamp.get("version", ""))
    return runtime if runtime.binary.exists() else None


async def provision(settings: Settings, progress: Progress | None = None) -> AsteriskRuntime:
    """Return a usable runtime, building the Debian root first if needed. Idempotent; safe across processes."""
    report: Progress = progress or (lambda step, detail: log.info("%s: %s", step, detail))
    report("check", "查找已有的 Asterisk")
    runtime = find_runtime(settings)
    if runtime is not None:
        report("done", f"Asterisk {runtime.version}（已就绪）")
        return runtime
    root = root_path(settings)
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = await asyncio.to_thread(_lock, root.parent / f".{root.name}.lock")
    try:
        runtime = find_runtime(settings)  # another process may have finished while we waited
        if runtime is None:
            runtime = await _build(settings, root, report)
    finally:
        lock.close()
    report("done", f"Asterisk {runtime.version}")
    return runtime


def _lock(path: Path):  # noqa: ANN202 - a file object holding an exclusive flock
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


async def _build(settings: Settings, root: Path, report: Progress) -> AsteriskRuntime:
    debootstrap = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).exists()), None
    )
    if debootstrap is None:
        raise ProvisionError("找不到 debootstrap：请先运行 scripts/setup（它会安装 debootstrap）")
    if os.geteuid() != 0:
        raise ProvisionError(
            "构建 Asterisk 运行环境（debootstrap、chroot）需要 root 权限；请以 root 运行一次 provision"
        )
    # Leftovers of an interrupted build: half-built temp dirs, or a root without its stamp.
    for stale in root.parent.glob(f".{root.name}.build-*"):
        report("check", f"清除未完成的构建 {stale}")
        await _remove_tree(stale)
    if root.exists():
        report("check", f"清除未完成的构建 {root}")
        await _remove_tree(root)

    build = root.parent / f".{root.name}.build-{os.getpid()}"
    started = time.monotonic()
    try:
        report("debootstrap", f"debootstrap sid（约 1 分钟）：{settings.asterisk.mirror}")
        await _run(
            [debootstrap, "--variant=minbase", "sid", str(build), settings.asterisk.mirror], "debootstrap", report
        )
        # No daemon may start inside the root while packages install.
        policy = build / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        report("update", "apt-get update（sid）")
        await _run(
            ["chroot", str(build), "apt-get", "-o", "Acquire::Check-Valid-Until=false", "update"], "update", report, env
        )
        report("install", "apt-get install " + " ".join(PACKAGES))
        await _run(
            ["chroot", str(build), "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
            "install",
            report,
            env,
        )
        await _run(["chroot", str(build), "apt-get", "clean"], "install", report, env)
        report("verify", "检查 Asterisk 版本")
        version = await _version(_root_runtime(build, ""))
        if (_major(version) or 0) < MIN_MAJOR:
            raise ProvisionError(f"安装的 Asterisk 版本 {version} 低于 {MIN_MAJOR}")
        stamp = {"version": version, "mirror": settings.asterisk.mirror, "seconds": round(time.monotonic() - started)}
        (build / STAMP).write_text(json.dumps(stamp), "utf-8")
        build.rename(root)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(_remove_tree(build))
        raise
    return _root_runtime(root, version)


async def _version(runtime: AsteriskRuntime) -> str:
    proc = await asyncio.create_subprocess_exec(
        *runtime.command("-V"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=runtime.environ()
    )
    out, _ = await proc.communicate()
    return out.decode(errors="replace").strip().removeprefix("Asterisk ").strip()


async def _run(argv: Sequence[str], step: str, report: Progress, env: dict[str, str] | None = None) -> None:
    """Run a command, passing each output line to progress; keep the tail for the error message."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail = [*tail[-19:], line]
                report(step, line)
        code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if code != 0:
        raise ProvisionError(f"{argv[0]} 失败（退出码 {code}）：\n" + "\n".join(tail))


def _mounts_under(path: Path) -> list[str]:
    """Mount points inside a root (debootstrap or chroot may leave /proc or /sys mounted when interrupted)."""
    prefix = str(path) + "/"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].encode().decode("unicode_escape") for line in lines if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


async def _remove_tree(path: Path) -> None:
    for point in _mounts_under(path):
        proc = await asyncio.create_subprocess_exec("umount", "-l", point)
        await proc.wait()
    if _mounts_under(path):
        raise ProvisionError(f"{path} 下仍有挂载点，无法删除")
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
