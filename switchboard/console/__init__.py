"""The duty-room console: a single page over the public API and the event stream."""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> HTMLResponse:
    """The page holds no data: it signs in and reads everything through the API with the user's token."""
    return HTMLResponse(resources.files(__name__).joinpath("static/index.html").read_text("utf-8"))
