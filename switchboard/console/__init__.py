"""The duty-room console: a single page over the public API and the event stream, its script served beside it (the
Content-Security-Policy admits no inline script)."""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)
_STATIC = resources.files(__name__).joinpath("static")


@router.get("/")
async def index() -> HTMLResponse:
    """The page holds no data: it signs in and reads everything through the API with the user's token."""
    return HTMLResponse(_STATIC.joinpath("index.html").read_text("utf-8"))


@router.get("/static/console.js")
async def script() -> Response:
    return Response(_STATIC.joinpath("console.js").read_text("utf-8"), media_type="text/javascript; charset=utf-8")
