"""A delivery worker as a process of its own: `python -m broadcast.worker [--channels module:factory] [--compose
module:factory]`.

It shares the database (and so the outbox) with the server; several may run at once. `factory(settings)` returns
the Channel objects to drive; by default broadcast.channels.from_settings. Notices' rows (a warning's directory
groups among them) are sent only by a worker given their composer, `--compose switchboard.notices.live:composer`
(`factory(ctx)`; broadcast knows no notices, so it is named, not imported). SIGTERM or Ctrl-C stop it gracefully
(sends in flight finish); SIGKILL loses nothing: rows it held are re-claimed when their lease runs out.
"""

import argparse
import asyncio
import importlib
import inspect
import logging
import signal
from typing import Any

from switchboard.core import config
from switchboard.core.context import Context

from .channels import from_settings as configured_channels
from .outbox import Compose, Outbox, OutboxSettings


def _factory(spec: str | None) -> Any:
    if not spec:
        return configured_channels
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "from_settings")


def _composer(spec: str | None, ctx: Context) -> Compose | None:
    return _factory(spec)(ctx) if spec else None


async def run(args: argparse.Namespace) -> None:
    settings = config.load(args.config)
    ctx = Context.from_settings(settings)
    channels = _factory(args.channels)(settings)
    if inspect.isawaitable(channels):
        channels = await channels
    if not channels:
        raise SystemExit("没有可用的发送渠道（请配置渠道或用 --channels 指定）")
    outbox = Outbox(
        ctx,
        channels,
        OutboxSettings.configured(settings, lease_seconds=args.lease, poll_seconds=args.poll),
        compose=_composer(args.compose, ctx),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await outbox.start()
    logging.getLogger(__name__).info("worker %s running: %s", outbox.worker_id, ", ".join(outbox.lanes))
    try:
        await stop.wait()
    finally:
        await outbox.stop()
        await ctx.db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m broadcast.worker", description="预警发送进程（共享数据库中的发件箱）"
    )
    parser.add_argument("--config", default=None, help="配置文件（默认 switchboard.toml 或 $SWITCHBOARD_CONFIG）")
    parser.add_argument("--channels", default=None, help="module:factory，返回要驱动的渠道对象")
    parser.add_argument(
        "--compose", default=None, help="module:factory，返回通知行的撰写函数（switchboard.notices.live:composer）"
    )
    parser.add_argument("--lease", type=float, default=60.0, help="租约秒数：崩溃后未完成的发送在此后重发")
    parser.add_argument("--poll", type=float, default=0.25, help="空闲时查询间隔（秒），一直无待发时逐步放宽到 4 倍")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
