"""`switchboard user add|list|disable|enable|passwd|roles`; every one audited under the operating-system account."""

import sys
from typing import Annotated

import typer
from rich.table import Table

from switchboard.auth import service
from switchboard.auth.models import Role
from switchboard.cli.common import ConfigOption, actor, console, run

app = typer.Typer(no_args_is_help=True)

RoleOption = Annotated[list[Role], typer.Option("--role", "-r", help="可重复")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码（脚本用）")]
_VOIDS = "该用户已签发的令牌作废，打开的控制台在数秒内断开"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("密码（至少 12 个字符）", hide_input=True, confirmation_prompt=True))


@app.command("add", help="添加用户；密码交互输入，或用 --password-stdin 从标准输入读取")
def add(
    username: str,
    role: RoleOption,
    display_name: Annotated[str, typer.Option("--name", help="显示名（中文姓名）")] = "",
    password_stdin: PasswordStdin = False,
    config_path: ConfigOption = None,
) -> None:
    password = _password(password_stdin)
    user = run(config_path, lambda ctx: service.add_user(ctx, actor(), username, password, role, display_name))
    console.print(f"已添加用户 {user.username}（{', '.join(user.roles)}）")


@app.command("list", help="列出用户、角色与状态")
def list_users(config_path: ConfigOption = None) -> None:
    table = Table("用户名", "显示名", "角色", "状态", "创建时间")
    for user in run(config_path, lambda ctx: service.list_users(ctx, actor())):
        status = "启用" if user.active else "已停用"
        table.add_row(user.username, user.display_name, ", ".join(user.roles), status, f"{user.created_at:%Y-%m-%d}")
    console.print(table)


@app.command("disable", help="停用用户：不能再登录，" + _VOIDS)
def disable(username: str, config_path: ConfigOption = None) -> None:
    run(config_path, lambda ctx: service.set_active(ctx, actor(), username, False))
    console.print(f"已停用用户 {username}；{_VOIDS}")


@app.command("enable", help="重新启用用户（需重新登录）")
def enable(username: str, config_path: ConfigOption = None) -> None:
    run(config_path, lambda ctx: service.set_active(ctx, actor(), username, True))
    console.print(f"已启用用户 {username}")


@app.command("passwd", help="重设密码；" + _VOIDS)
def passwd(username: str, password_stdin: PasswordStdin = False, config_path: ConfigOption = None) -> None:
    password = _password(password_stdin)
    run(config_path, lambda ctx: service.set_password(ctx, actor(), username, password))
    console.print(f"已重设用户 {username} 的密码；{_VOIDS}")


@app.command("roles", help="设置用户的角色（替换原有角色）；" + _VOIDS)
def roles(username: str, role: RoleOption, config_path: ConfigOption = None) -> None:
    user = run(config_path, lambda ctx: service.set_roles(ctx, actor(), username, role))
    console.print(f"用户 {username} 的角色：{', '.join(user.roles)}；{_VOIDS}")
