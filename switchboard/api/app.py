"""The ASGI application: composes the subsystems on one Context and runs their background work."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from broadcast.channels import from_settings as configured_channels
from broadcast.models import CHANNEL_NAMES
from broadcast.outbox import Outbox, OutboxSettings
from recording.store import RecordingStore
from switchboard import console
from switchboard.api import errors, live
from switchboard.api.deps import Services
from switchboard.api.headers import SecurityHeaders
from switchboard.api.limits import RequestLimits
from switchboard.auth import user_views
from switchboard.auth import views as auth_views
from switchboard.auth.sessions import Sessions
from switchboard.bridges import views as bridge_views
from switchboard.calls import views as call_views
from switchboard.cameras import views as camera_views
from switchboard.cameras.live import LiveCameras
from switchboard.consultations import page as consultation_page
from switchboard.consultations import views as consultation_views
from switchboard.core.context import Context
from switchboard.directory import service as directory_service
from switchboard.directory import views as directory_views
from switchboard.faxes import views as fax_views
from switchboard.incidents import deadlines, timeline
from switchboard.incidents import views as incident_views
from switchboard.linechecks import views as linecheck_views
from switchboard.notices import page as notice_page
from switchboard.notices import views as notice_views
from switchboard.notices.live import Notices
from switchboard.recordings import retention
from switchboard.recordings import views as recording_views
from switchboard.telephony import Telephony
from switchboard.video import Video
from switchboard.warnings import feed_views
from switchboard.warnings import views as warning_views
from switchboard.warnings.fax_channel import FaxChannel

log = logging.getLogger(__name__)


def create_app(ctx: Context, telephony: Telephony | None = None, video: Video | None = None) -> FastAPI:
    recordings = RecordingStore(ctx)
    telephony = telephony or Telephony(ctx, recordings=recordings)
    video = video or Video(ctx, recordings, telephony)
    notices = Notices(ctx)  # renders the notices' deliveries, hears SMS replies, watches tiers and completion
    outbox = Outbox(  # tests and plug-ins add channels: outbox.add
        ctx,
        configured_channels(ctx.settings, on_mobile_originated=notices.on_reply),
        OutboxSettings.configured(ctx.settings),
        compose=notices.compose,
    )
    cameras = LiveCameras(ctx)
    composed = Services(ctx, telephony, video, outbox, recordings, Sessions(ctx), cameras, notices)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.db.migrate()
        await directory_service.ensure_divisions(ctx)
        timeline.subscribe(ctx)
        watcher = asyncio.create_task(deadlines.watch(ctx))
        purger = asyncio.create_task(retention.watch(ctx, recordings))
        await telephony.start()
        if telephony.faxes is not None:  # warnings by fax go through the same fax lines
            await outbox.add(FaxChannel(ctx, lambda: telephony.faxes))
        if (voice := telephony.voice_channel()) is not None:
            await outbox.add(voice)
        await video.start()
        cameras.wall.streams = video.cameras
        await cameras.start()
        await outbox.start()
        notices.start(outbox)
        # What startup built lives as long as the server (some 450,000 objects: routes, models, compiled SQL,
        # the divisions): out of the cyclic collector's reach, a full collection no longer walks it, which had
        # stopped the event loop for 369 ms in a calls bench run. Let go again at the end, for a process that
        # starts another app (the tests).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            for task in (watcher, purger):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await notices.stop()
            await outbox.stop()
            await cameras.stop()
            await video.stop()
            await telephony.stop()
            await ctx.db.close()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        description="应急指挥调度交换平台 API: incident record, contact directory, dispatch, warnings.",
        lifespan=lifespan,
        docs_url=None,  # served by the console from local files (switchboard.console), not from a CDN
        redoc_url=None,
    )
    app.state.services = composed
    errors.install(app)
    app.add_middleware(RequestLimits, ctx=ctx)
    app.add_middleware(SecurityHeaders)
    app.include_router(auth_views.router, responses=errors.RESPONSES)
    app.include_router(auth_views.people, responses=errors.RESPONSES)
    app.include_router(user_views.router, responses=errors.RESPONSES)
    app.include_router(incident_views.router, responses=errors.RESPONSES)
    app.include_router(directory_views.router, responses=errors.RESPONSES)
    app.include_router(call_views.router, responses=errors.RESPONSES)
    app.include_router(bridge_views.router, responses=errors.RESPONSES)
    app.include_router(warning_views.router, responses=errors.RESPONSES)
    app.include_router(recording_views.router, responses=errors.RESPONSES)
    app.include_router(consultation_views.router, responses=errors.RESPONSES)
    app.include_router(consultation_page.router)
    app.include_router(fax_views.router, responses=errors.RESPONSES)
    app.include_router(linecheck_views.router, responses=errors.RESPONSES)
    app.include_router(camera_views.router, responses=errors.RESPONSES)
    app.include_router(notice_views.router, responses=errors.RESPONSES)
    app.include_router(notice_page.router)
    app.include_router(feed_views.router)
    app.include_router(live.router)
    app.include_router(console.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Each component's state; unauthenticated so that monitoring can poll it, and it reveals no data."""
        components: dict[str, Any] = {}
        try:
            await asyncio.wait_for(ctx.db.ping(), 5)
            components["database"] = {"status": "ok", "backend": "sqlite" if ctx.db.is_sqlite else "postgresql"}
        except Exception as exc:  # noqa: BLE001 - any failure is the answer here
            components["database"] = {"status": "down", "error": type(exc).__name__}
        if (asterisk := telephony.health()) is not None:
            components["asterisk"] = asterisk
        if (janus := video.health()) is not None:
            components["janus"] = janus
        components |= cameras.health()
        links = outbox.health()
        for name in CHANNEL_NAMES.keys() | links.keys():  # every warning channel: its link, or "off" (not configured)
            components[f"channel:{name}"] = links.get(name) or {"status": "off", "error": "未配置"}
        healthy = all(c["status"] in ("ok", "off") for c in components.values())
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", "components": components}, 200 if healthy else 503
        )

    return app
