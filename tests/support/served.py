"""An ASGI app served by uvicorn on a free loopback port, for peers that need a real socket (browsers, WebSockets)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from tests.support.wait import until


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve `app` (its lifespan already running) until the block ends; yields host:port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), timeout=10, what="uvicorn to start")
    if task.done():
        task.result()  # it stopped before it started: raise what stopped it
    try:
        yield f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
