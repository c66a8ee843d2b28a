"""`switchboard asterisk provision|start|stop|status|reload`: the local telephone engine from a shell."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sip import dialplan, provision
from sip.engine import Engine, EngineError, EngineStatus
from switchboard.cli.common import ConfigOption, console, err, load_settings
from switchboard.core.config import Settings

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True)

_STEPS = {
    "check": "检查",
    "debootstrap": "构建 Debian 根目录",
    "update": "更新软件包索引",
    "install": "安装 Asterisk",
    "verify": "校验",
    "done": "完成",
}


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except (provision.ProvisionError, EngineError, dialplan.DialplanError) as exc:
        err.print(f"[red]错误：{exc}[/red]")
        raise typer.Exit(1) from None


def _local(settings: Settings) -> None:
    if settings.asterisk.mode != "local":
        err.print(f"[yellow]asterisk.mode = {settings.asterisk.mode}：本机不管理 Asterisk[/yellow]")
        raise typer.Exit(2)


async def provision_with_progress(settings: Settings) -> provision.AsteriskRuntime:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("准备 Asterisk", total=None)

        def report(step: str, detail: str) -> None:
            bar.update(task, description=f"{_STEPS.get(step, step)}：{detail[:80]}")

        return await provision.provision(settings, report)


async def _engine(settings: Settings) -> Engine:
    runtime = provision.find_runtime(settings)
    if runtime is None:
        raise EngineError("尚未准备 Asterisk：请先运行 switchboard asterisk provision")
    return Engine(settings, runtime)


def _print(status: EngineStatus) -> None:
    if not status.running:
        console.print("Asterisk 未运行")
        return
    console.print(f"Asterisk 运行中：pid {status.pid}，版本 {status.version}，已运行 {status.uptime_seconds} 秒")


@app.command("provision", help="准备 Asterisk 22 运行环境（首次约 1-2 分钟，之后直接使用缓存）")
def provision_(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    runtime = _run(provision_with_progress(settings))
    where = runtime.root or runtime.binary
    console.print(f"Asterisk {runtime.version} 就绪：{where}")


@app.command("start", help="生成配置并启动本机 Asterisk（已在运行则不重复启动）")
def start(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    _local(settings)

    async def work() -> EngineStatus:
        await provision_with_progress(settings)
        return await (await _engine(settings)).start()

    _print(_run(work()))


@app.command("stop", help="停止本机 Asterisk")
def stop(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    _local(settings)

    async def work() -> bool:
        return await (await _engine(settings)).stop()

    console.print("Asterisk 已停止" if _run(work()) else "Asterisk 本来就未运行")


@app.command("status", help="查看本机 Asterisk 状态")
def status(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    _local(settings)

    async def work() -> EngineStatus:
        return await (await _engine(settings)).status()

    result = _run(work())
    _print(result)
    if not result.running:
        raise typer.Exit(3)


@app.command("reload", help="重新生成配置并加载到运行中的 Asterisk（不重启）")
def reload(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    _local(settings)

    async def work() -> list[str]:
        return await (await _engine(settings)).reload()

    changed = _run(work())
    console.print(f"已重新加载；变更的文件：{', '.join(changed) or '无'}")
