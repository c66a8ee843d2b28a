"""User administration over the API (the console's admin pages): create, rename, seat at a desk, change roles,
disable, reset a password; administrators only, each change audited, access changes void the user's tokens."""

import httpx
from sqlalchemy import select

from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context

STRONG = "Kettle-Harbour-Lantern-42"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", json={"username": username, "password": password})


async def test_an_admin_manages_users_and_desks(client: httpx.AsyncClient, ctx: Context, tokens: dict) -> None:
    admin = tokens["admin"]
    new = {
        "username": "chenjing",
        "display_name": "陈静",
        "password": STRONG,
        "roles": ["duty_officer"],
        "desk": "6001",
    }
    created = await client.post("/api/v1/users", json=new, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["desk"] == "6001" and "password" not in created.json()
    assert (await client.post("/api/v1/users", json=new, headers=admin)).status_code == 409

    token = (await _login(client, "chenjing", STRONG)).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    me = (await client.get("/api/v1/me", headers=mine)).json()
    assert (me["display_name"], me["roles"], me["desk"]) == ("陈静", ["duty_officer"], "6001")

    moved = await client.patch(
        "/api/v1/users/chenjing", json={"desk": "6002", "display_name": "陈静（夜班）"}, headers=admin
    )
    assert moved.json()["desk"] == "6002" and moved.json()["display_name"] == "陈静（夜班）"
    assert (await client.get("/api/v1/me", headers=mine)).status_code == 200  # a new desk keeps the session

    off = await client.patch("/api/v1/users/chenjing", json={"active": False}, headers=admin)
    assert off.json()["active"] is False
    listed = {u["username"]: u for u in (await client.get("/api/v1/users", headers=admin)).json()}
    assert listed["chenjing"]["active"] is False and listed["duty_officer"]["display_name"] == "王建国"

    await client.patch("/api/v1/users/chenjing", json={"active": True, "clear_desk": True}, headers=admin)
    reset = await client.post(
        "/api/v1/users/chenjing/password", json={"password": "Quiet-River-Compass-77"}, headers=admin
    )
    assert reset.status_code == 200 and reset.json()["desk"] is None
    assert (await _login(client, "chenjing", STRONG)).status_code == 401
    assert (await _login(client, "chenjing", "Quiet-River-Compass-77")).status_code == 200

    async with ctx.db.reader() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "admin")))
    assert {"user.add", "user.profile", "user.disable", "user.enable", "user.passwd", "user.list"} <= set(actions)


async def test_only_admins_manage_users_and_errors_name_the_field(client: httpx.AsyncClient, tokens: dict) -> None:
    for role in ("duty_officer", "leader", "alert_officer", "approver"):
        assert (await client.get("/api/v1/users", headers=tokens[role])).status_code == 403
    weak = {"username": "x1", "password": "123456", "roles": ["leader"]}
    refused = await client.post("/api/v1/users", json=weak, headers=tokens["admin"])
    assert refused.status_code == 422 and refused.json()["field"] == "password"
    bad_desk = weak | {"password": STRONG, "desk": "前台"}
    refused = await client.post("/api/v1/users", json=bad_desk, headers=tokens["admin"])
    assert refused.status_code == 422 and refused.json()["field"] == "desk"
    missing = await client.patch("/api/v1/users/nobody", json={"desk": "6001"}, headers=tokens["admin"])
    assert missing.status_code == 404 and missing.json()["field"] == "username"
    last = await client.patch("/api/v1/users/admin", json={"active": False}, headers=tokens["admin"])
    assert last.status_code == 409
