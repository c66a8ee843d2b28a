"""The `switchboard` command: set-up, serving, and the duty room's chores from a shell on the server."""

import os

import typer

from switchboard.cli import asterisk, audit, backup, directory, incidents, recordings, server, users

app = typer.Typer(help="Switchboard 应急通信调度平台", no_args_is_help=True, pretty_exceptions_enable=False)
app.command("init", help="写出带注释的默认配置文件")(server.init)
app.command("serve", help="启动控制台与 API")(server.serve)
app.add_typer(users.app, name="user", help="用户与角色")
app.add_typer(directory.app, name="directory", help="应急工作联络网")
app.add_typer(incidents.app, name="incident", help="事件记录")
app.add_typer(incidents.report_app, name="report", help="事件报告（初报、续报、终报）")
app.add_typer(audit.app, name="audit", help="审计日志")
app.add_typer(asterisk.app, name="asterisk", help="电话引擎（Asterisk）")
app.add_typer(recordings.app, name="recordings", help="录音存储")
app.command("backup", help="在服务运行时写出一致的备份归档（数据库、录音、密钥、配置）")(backup.backup)
app.command("restore", help="把备份归档还原到空的 var 目录（先校验每个文件的 SHA-256）")(backup.restore)


def main() -> None:
    # Everything the server and its engines write (database, secrets, recordings, engine configs) is for this
    # account alone: files 0600, directories 0700. Asterisk and Janus inherit the mask.
    os.umask(0o077)
    app()
