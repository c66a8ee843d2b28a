"""The duty-room console: a Vue 3 + Element Plus page (switchboard/console/web, built by `scripts/setup` into
web/dist) over the public API and the event stream, and the API's own documentation page; every asset is served
from here (duty networks are offline), none inline (the Content-Security-Policy admits no inline script)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

DIST = Path(__file__).parent / "web" / "dist"
router = APIRouter(include_in_schema=False)

_NOT_BUILT = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>应急指挥调度台</title></head>
<body><h1>控制台尚未构建</h1><p>请在项目目录运行 <code>scripts/setup</code>（需要 Node.js 与 npm）。
API 不受影响。</p></body></html>"""
# The tab icon, for every page of this server (browsers ask /favicon.ico of the console and of printed reports).
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#13324f"/>'
    '<path d="M16 6v20M6 16h20" stroke="#e74c3c" stroke-width="5"/></svg>'
)
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def page(name: str, headers: dict[str, str] | None = None) -> Response:
    """A built page (the console, /docs, the consultation join page), or the note that the build is missing."""
    path = DIST / name
    if not path.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503)
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers or {"Cache-Control": "no-cache"})


def _asset(folder: str, name: str, cache: str) -> Response:
    path = DIST / folder / name
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": cache})


@router.get("/favicon.ico")
async def icon() -> Response:
    return Response(_ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/")
async def index() -> Response:
    """The page holds no data: it signs in and reads everything through the API."""
    return page("index.html")


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    return _asset("assets", name, "public, max-age=31536000, immutable")  # names carry their content's hash


@router.get("/docs")
async def docs() -> Response:
    """Swagger UI over /openapi.json, from local files."""
    return page("docs.html")


@router.get("/docs/{name}")
async def docs_asset(name: str) -> Response:
    return _asset("docs", name, "no-cache")


@router.get("/docs-init.js")
async def docs_init() -> Response:
    return _asset("", "docs-init.js", "no-cache")
