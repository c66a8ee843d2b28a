"""The `switchboard` command, run as a user runs it: a separate process on a SQLite file."""

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from switchboard.core import config
from switchboard.core.context import Context
from switchboard.incidents import service
from switchboard.incidents.models import ReportCreate
from tests.support.wait import until_sync

SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return os.environ | {
        "SWITCHBOARD_CONFIG": str(tmp_path / "switchboard.toml"),
        "SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path / "var"),
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "SWITCHBOARD_JANUS_MODE": "off",  # `serve` starting its engines is tested in test_calls and test_consultations
    }


def sb(env: dict[str, str], *args: str, ok: bool = True, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SWITCHBOARD, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_init_writes_a_commented_default_once(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "switchboard.toml"
    sb(env, "init", str(path))
    assert path.read_text("utf-8") == config.render_default()
    again = sb(env, "init", str(path), ok=False)
    assert again.returncode == 1 and "已存在" in again.stderr


def test_bad_config_stops_with_the_key(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "switchboard.toml").write_text("[server]\nport = 'http'\n")
    done = sb(env, "incident", "list", ok=False)
    assert done.returncode == 2
    assert "server.port" in done.stderr


def test_incident_lifecycle_and_audit(env: dict[str, str], tmp_path: Path) -> None:
    created = sb(
        env,
        "incident",
        "create",
        "--title",
        "大同市煤矿透水",
        "--category",
        "accident_disaster",
        "--level",
        "II",
        "--area-code",
        "140200",
        "--location",
        "云冈区",
    )
    incident_id = re.search(r"已登记事件 (\w+)", created.stdout).group(1)
    assert "大同市煤矿透水" in sb(env, "incident", "list").stdout
    assert "接报：大同市煤矿透水（重大）" in sb(env, "incident", "show", incident_id).stdout
    bad = sb(
        env,
        "incident",
        "create",
        "--title",
        "x",
        "--category",
        "accident_disaster",
        "--level",
        "II",
        "--area-code",
        "149999",
        ok=False,
    )
    assert bad.returncode == 1 and "area_code" in bad.stderr

    report = asyncio.run(_first_report(tmp_path, incident_id))
    out = tmp_path / "report.html"
    sb(env, "report", "export", incident_id, report, "-o", str(out))
    assert "突发事件信息初报" in out.read_text("utf-8")
    sb(env, "report", "export", incident_id, report, "-o", str(tmp_path / "r.json"), "--format", "json")
    assert '"info_source": "云冈区应急管理局"' in (tmp_path / "r.json").read_text("utf-8")

    assert "未发现篡改" in sb(env, "audit", "verify").stdout
    with sqlite3.connect(tmp_path / "var" / "switchboard.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    tampered = sb(env, "audit", "verify", ok=False)
    assert tampered.returncode == 1
    assert "第 1 条：条目内容被修改" in tampered.stdout


async def _first_report(tmp_path: Path, incident_id: str) -> str:
    ctx = Context.from_settings(config.load(environ={"SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path / "var")}))
    data = ReportCreate(
        kind="first",
        info_source="云冈区应急管理局",
        occurred_at="2026-08-01T10:00:00+08:00",
        nature="透水事故",
        impact_scope="井下",
        casualties_losses="被困 3 人",
        trend="抽排中",
        measures_taken="启动应急预案",
        reporting_unit="大同市应急管理局",
        signed_by="周建华",
        contact_phone="0352-5012345",
    )
    report = await service.submit_report(ctx, "test", incident_id, data)
    await ctx.db.close()
    return report.id


def test_user_add_then_sign_in(env: dict[str, str]) -> None:
    add = ("user", "add", "--password-stdin")
    sb(env, *add, "zhangwei", "--role", "duty_officer", "--role", "leader", "--name", "张伟", stdin="duty-pass-2026\n")
    again = sb(env, *add, "zhangwei", "--role", "leader", stdin="duty-pass-2026\n", ok=False)
    assert again.returncode == 1 and "已存在" in again.stderr
    short = sb(env, *add, "li", "--role", "leader", stdin="short\n", ok=False)
    assert "password" in short.stderr
    process, url = _serve_until_healthy(env)
    try:
        token = httpx.post(f"{url}/api/v1/auth/token", json={"username": "zhangwei", "password": "duty-pass-2026"})
        assert token.json()["roles"] == ["duty_officer", "leader"]
    finally:
        process.terminate()
        process.communicate(timeout=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_until_healthy(env: dict[str, str], tries: int = 3) -> tuple[subprocess.Popen[str], str]:
    """`switchboard serve` on a free port, once it answers /healthz. A port found free can be taken by another
    process before the server binds it (other test runs share the machine): then again on another port."""
    try:
        return _serve_on_a_free_port(env)
    except PortTaken:
        if tries == 1:
            raise
        return _serve_until_healthy(env, tries - 1)


class PortTaken(AssertionError):
    pass


def _serve_on_a_free_port(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    process = subprocess.Popen(
        [SWITCHBOARD, "serve"],
        env=env | {"SWITCHBOARD_SERVER_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            output = process.communicate()[0]
            taken = "address already in use" in output
            raise (PortTaken if taken else AssertionError)(f"switchboard serve exited: {output}")
        try:
            return httpx.get(f"{url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        until_sync(healthy, timeout=30, what=f"switchboard serve to answer {url}/healthz")
    except AssertionError as failed:
        if process.poll() is None:
            process.kill()
            failed.add_note(process.communicate()[0])
        raise
    return process, url


def test_serve_creates_the_admin_once_and_prints_its_password(env: dict[str, str]) -> None:
    process, url = _serve_until_healthy(env)
    try:
        assert "Switchboard" in httpx.get(f"{url}/openapi.json").text
        assert "应急指挥调度台" in httpx.get(f"{url}/").text
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    password = re.search(r"初始密码（仅显示这一次）：(\S+)", output).group(1)
    process, url = _serve_until_healthy(env)
    try:
        token = httpx.post(f"{url}/api/v1/auth/token", json={"username": "admin", "password": password})
        assert token.status_code == 200 and token.json()["roles"] == ["admin"]
        wrong = httpx.post(f"{url}/api/v1/auth/token", json={"username": "admin", "password": "guess-guess"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    finally:
        process.terminate()
        assert "初始密码" not in process.communicate(timeout=20)[0]


def test_serve_stops_on_a_signal_without_a_trace(env: dict[str, str]) -> None:
    """SIGTERM (systemd, docker stop) and Ctrl-C end the server the way uvicorn ends it, and print no trace even
    when the shutdown cancels background work half-way through a write: the report-deadline watch, told to check
    back to back, is mid-transaction most of the time. A fresh var, the same var again, then Ctrl-C."""
    env = env | {"SWITCHBOARD_INCIDENTS_DEADLINE_CHECK_SECONDS": "0.001"}
    # uvicorn shuts down, then re-raises SIGTERM so the process ends by it. After Ctrl-C it re-raises SIGINT into
    # asyncio.run's own handler, which cancels the finishing main task: typer's 130 mostly, but on a loaded machine
    # the task can finish first and the process ends 0 (seen once in three loaded runs). Both are a clean stop.
    for signum, exit_codes in (
        (signal.SIGTERM, {-signal.SIGTERM}),
        (signal.SIGTERM, {-signal.SIGTERM}),
        (signal.SIGINT, {130, 0}),
    ):
        process, _ = _serve_until_healthy(env)
        process.send_signal(signum)
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"still running 30 s after {signum.name}: {process.communicate()[0]}") from None
        assert "Application shutdown complete." in output, output
        assert not re.search(r"Traceback|CancelledError|Exception|ERROR", output), output
        assert process.returncode in exit_codes, output
