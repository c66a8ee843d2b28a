"""The `switchboard` command: set-up, serving, and the duty room's chores from a shell on the server."""

import typer

from switchboard.cli import asterisk, audit, directory, incidents, recordings, server, users

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


def main() -> None:
    app()
