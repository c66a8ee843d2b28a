"""User administration for the console's admin pages: list, create, change (name, roles, desk, enabled), reset a
password. Administrators only; each change is audited by the service, and the ones that touch access void tokens."""

from typing import Annotated

from fastapi import APIRouter, Path

from switchboard.api.deps import Admin, Ctx
from switchboard.auth import service
from switchboard.auth.models import PasswordReset, User, UserChange, UserCreate, UserOut

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Name = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=list[UserOut])
async def list_users(ctx: Ctx, who: Admin) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in await service.list_users(ctx, who.username)]


@router.post("", status_code=201, response_model=UserOut)
async def add_user(ctx: Ctx, who: Admin, body: UserCreate) -> UserOut:
    user = await service.add_user(
        ctx, who.username, body.username, body.password, body.roles, body.display_name, body.desk
    )
    return UserOut.model_validate(user)


@router.patch("/{username}", response_model=UserOut)
async def change_user(ctx: Ctx, who: Admin, username: Name, body: UserChange) -> UserOut:
    user: User | None = None
    profile: dict[str, str | None] = {}
    if body.display_name is not None:
        profile["display_name"] = body.display_name
    if body.desk is not None or body.clear_desk:
        profile["desk"] = None if body.clear_desk else body.desk
    if profile:
        user = await service.set_profile(ctx, who.username, username, profile)
    if body.roles is not None:
        user = await service.set_roles(ctx, who.username, username, body.roles)
    if body.active is not None:
        user = await service.set_active(ctx, who.username, username, body.active)
    return UserOut.model_validate(user or await service.get_user(ctx, username))


@router.post("/{username}/password", response_model=UserOut)
async def reset_password(ctx: Ctx, who: Admin, username: Name, body: PasswordReset) -> UserOut:
    """The user's open sessions end; they sign in with the new password."""
    return UserOut.model_validate(await service.set_password(ctx, who.username, username, body.password))
