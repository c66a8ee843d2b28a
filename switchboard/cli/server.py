"""`switchboard init` and `switchboard serve`."""

import asyncio
import shutil
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from sip.provision import ProvisionError, find_runtime
from switchboard.api.app import create_app
from switchboard.api.redact import hide_tokens
from switchboard.auth.service import ensure_admin
from switchboard.cli.asterisk import provision_with_progress
from switchboard.cli.common import ConfigOption, console, err, load_settings
from switchboard.core import config
from switchboard.core.context import Context


def init(
    path: Annotated[Path, typer.Argument(help="Where to write it")] = Path(config.DEFAULT_CONFIG_FILE),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file")] = False,
) -> None:
    if path.exists() and not force:
        err.print(f"[red]{path} 已存在；使用 --force 覆盖[/red]")
        raise typer.Exit(1)
    path.write_text(config.render_default(), "utf-8")
    console.print(f"已写入默认配置：{path}")


WS_MAX_BYTES = 256 * 1024  # a WebSocket message larger than this closes the socket (a page's SDP is 5-15 KB)


def serve(config_path: ConfigOption = None) -> None:
    settings = load_settings(config_path)
    ctx = Context.from_settings(settings)

    async def main() -> None:
        if settings.asterisk.mode == "local" and find_runtime(settings) is None:
            console.print("首次启动：正在准备电话引擎 Asterisk 22（约 1-2 分钟，只需一次）")
            try:
                await provision_with_progress(settings)
            except ProvisionError as exc:
                err.print(f"[red]{exc}[/red]\n不需要电话功能时可设置 SWITCHBOARD_ASTERISK_MODE=off")
                raise typer.Exit(1) from None
        if settings.janus.mode == "local" and not shutil.which(settings.janus.binary):
            err.print(f"[red]找不到视频会商引擎 Janus（{settings.janus.binary}）：请运行 scripts/setup[/red]")
            err.print("不需要视频会商时可设置 SWITCHBOARD_JANUS_MODE=off")
            raise typer.Exit(1)
        await ctx.db.migrate()
        try:
            password = await ensure_admin(ctx)
        except config.ConfigError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        if password:
            console.print(
                f"[bold yellow]已创建管理员 {settings.auth.admin_username}，初始密码（仅显示这一次）：{password}[/]"
            )
        app = create_app(ctx)
        # FastAPI builds each route's validators on the first request that reaches it, about 0.8 s of CPU for them
        # all: paid while the first calls queue behind it otherwise. Building the schema builds them now. (Not in
        # the app's lifespan: the tests start hundreds of apps and touch a few routes of each.)
        app.openapi()
        console.print(f"控制台与 API：http://{settings.server.host}:{settings.server.port}/")
        if settings.janus.mode == "local":
            console.print("视频会商引擎 Janus 随服务启动（\\[janus] mode = local）")
        # The live events are a few hundred bytes of JSON each, to consoles on the offices' own network:
        # compressing each for each console (permessage-deflate) was 3 % of the event loop's samples during a
        # 100-leg convene (py-spy), for bandwidth nobody lacks.
        served = uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level="info",
            ws_max_size=WS_MAX_BYTES,
            ws_per_message_deflate=False,
        )
        server = uvicorn.Server(served)
        hide_tokens()  # after uvicorn.Config set up its loggers
        await server.serve()

    asyncio.run(main())
