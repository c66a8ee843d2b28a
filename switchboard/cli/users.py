"""`switchboard user add`."""

import sys
from typing import Annotated

import typer

from switchboard.auth import service
from switchboard.auth.models import Role
from switchboard.cli.common import ConfigOption, actor, console, run

app = typer.Typer(no_args_is_help=True)


@app.command("add", help="添加用户；密码交互输入，或用 --password-stdin 从标准输入读取")
def add(
    username: str,
    role: Annotated[list[Role], typer.Option("--role", "-r", help="可重复")],
    display_name: Annotated[str, typer.Option("--name", help="显示名（中文姓名）")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码（脚本用）")] = False,
    config_path: ConfigOption = None,
) -> None:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("密码", hide_input=True, confirmation_prompt=True)
    user = run(config_path, lambda ctx: service.add_user(ctx, actor(), username, password, role, display_name))
    console.print(f"已添加用户 {user.username}（{', '.join(user.roles)}）")
