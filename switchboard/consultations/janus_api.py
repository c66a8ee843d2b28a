"""The Janus WebSocket API (subprotocol `janus-protocol`) as the join page's janus.js speaks it, answered by the relay
rather than by Janus: create (carrying the join token, as every later frame does), attach, message, trickle, detach,
keepalive, destroy. A message may say only the four VideoRoom requests the page makes (join, configure, join as
subscriber, start) or the two AudioBridge ones (join, configure) with none of the fields the relay writes itself;
anything else is refused, naming the field, and never reaches Janus. Answers and events are framed as Janus frames
them, so janus.js works unchanged."""

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from conference.video.session import AUDIOBRIDGE, VIDEOROOM
from switchboard.api import errors
from switchboard.consultations.models import (
    AUDIO_BODIES,
    BODIES,
    MAX_SDP,
    Body,
    Configure,
    Frame,
    JoinAsPublisher,
    JoinAsSubscriber,
    JoinAudio,
    Speak,
    Start,
)
from switchboard.consultations.relay import Relay
from switchboard.core.errors import Conflict, Forbidden, InvalidInput, SwitchboardError, quoted

SUBPROTOCOL = "janus-protocol"
PLUGINS = (VIDEOROOM, AUDIOBRIDGE)
MAX_MESSAGE = MAX_SDP + 4096
M = TypeVar("M", bound=BaseModel)
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Refused(Exception):
    """A frame refused before it reached the relay: the error to answer its transaction with."""

    def __init__(self, transaction: str | None, error: SwitchboardError) -> None:
        super().__init__(error.message)
        self.transaction, self.error = transaction, error


def parse(raw: str) -> Frame:
    """A page's frame, checked: a clear error naming the field (with the frame's transaction when it has one)."""
    if len(raw) > MAX_MESSAGE:
        raise Refused(None, InvalidInput(f"消息过长（最多 {MAX_MESSAGE} 字符）"))
    try:
        data = json.loads(raw)
    except ValueError:
        raise Refused(None, InvalidInput("消息不是有效的 JSON")) from None
    if not isinstance(data, dict):
        raise Refused(None, InvalidInput("消息应为 JSON 对象"))
    transaction = data["transaction"] if isinstance(data.get("transaction"), str) else None
    try:
        return _checked(Frame, data)
    except InvalidInput as exc:
        raise Refused(transaction, exc) from None


def _checked(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = errors.explain(exc.errors())
        raise InvalidInput(message, field=field) from None


def error(transaction: str | None, exc: SwitchboardError) -> dict[str, Any]:
    """Janus's error frame, its reason in Chinese; `field` names what was wrong."""
    reason = {"code": exc.status, "reason": exc.message}
    return {"janus": "error", "transaction": transaction, "error": reason, "field": exc.field}


def event(
    sender: int,
    data: dict[str, Any],
    transaction: str | None = None,
    jsep: str = "",
    kind: str = "",
    plugin: str = VIDEOROOM,
) -> dict[str, Any]:
    """A plugin's event on handle `sender` (with an offer or answer when `jsep` holds one)."""
    frame: dict[str, Any] = {"janus": "event", "sender": sender, "plugindata": {"plugin": plugin, "data": data}}
    if transaction is not None:
        frame["transaction"] = transaction
    if jsep:
        frame["jsep"] = {"type": kind, "sdp": jsep}
    return frame


async def answer(relay: Relay, frame: Frame, session_id: int, send: Send) -> bool:
    """Answer one frame after the session's create; False once the page has destroyed its session. A refusal is
    Janus's error for the frame (for a VideoRoom request: the plugin's error event), never the end of the session."""
    t = frame.transaction
    if not hmac.compare_digest(frame.token.encode(), relay.token.encode()):
        raise Refused(t, Forbidden("会商令牌与本连接不符", field="token"))
    try:
        match frame.janus:
            case "keepalive":
                await send({"janus": "ack", "session_id": session_id, "transaction": t})
            case "attach":
                if frame.plugin not in PLUGINS:
                    raise InvalidInput(
                        "plugin：只能使用 janus.plugin.videoroom 或 janus.plugin.audiobridge", field="plugin"
                    )
                handle = await relay.attach(frame.plugin)
                await send({"janus": "success", "session_id": session_id, "transaction": t, "data": {"id": handle}})
            case "detach":
                await relay.detach(_handle(frame))
                await send({"janus": "success", "session_id": session_id, "transaction": t})
            case "trickle":
                if frame.candidate is None:
                    raise InvalidInput("candidate：缺少候选地址", field="candidate")
                await relay.trickle(_handle(frame), frame.candidate.model_dump(exclude_none=True))
                await send({"janus": "ack", "session_id": session_id, "transaction": t})
            case "destroy":
                await send({"janus": "success", "session_id": session_id, "transaction": t})
                return False
            case "message":
                handle = _handle(frame)
                await send({"janus": "ack", "session_id": session_id, "transaction": t})
                await send(await _plugin_request(relay, handle, frame) | {"session_id": session_id})
            case "create":
                raise Conflict("会话已创建", field="janus")
    except SwitchboardError as exc:
        if frame.janus != "message" or frame.handle_id is None:
            raise Refused(t, exc) from None
        refusal = {"videoroom": "event", "error_code": exc.status, "error": exc.message, "field": exc.field}
        await send(event(frame.handle_id, refusal, t) | {"session_id": session_id})
    return True


def _handle(frame: Frame) -> int:
    if frame.handle_id is None:
        raise InvalidInput("handle_id：缺少句柄", field="handle_id")
    return frame.handle_id


async def _plugin_request(relay: Relay, handle: int, frame: Frame) -> dict[str, Any]:
    """A VideoRoom request on `handle`, its answer as Janus's event for the same transaction."""
    t, jsep = frame.transaction, frame.jsep
    if relay.plugin_of(handle) == AUDIOBRIDGE:
        return await _audio_request(relay, handle, frame)
    match _body(frame, BODIES):
        case JoinAsPublisher(pin=pin):
            return event(handle, await relay.join(handle, pin), t)
        case Configure():
            if jsep is None or jsep.type != "offer":
                raise InvalidInput("jsep：发布需要 offer", field="jsep")
            data, sdp = await relay.publish(handle, jsep.sdp)
            return event(handle, data, t, sdp, "answer")
        case JoinAsSubscriber(streams=[stream]):
            data, sdp = await relay.subscribe(handle, stream.feed)
            return event(handle, data, t, sdp, "offer")
        case Start():
            if jsep is None or jsep.type != "answer":
                raise InvalidInput("jsep：开始接收需要 answer", field="jsep")
            return event(handle, await relay.start(handle, jsep.sdp), t)
    raise InvalidInput("request：不支持的请求", field="request")


async def _audio_request(relay: Relay, handle: int, frame: Frame) -> dict[str, Any]:
    """An AudioBridge request on the page's audio handle, its answer as Janus's event for the same transaction."""
    t, jsep = frame.transaction, frame.jsep
    match _body(frame, AUDIO_BODIES):
        case JoinAudio():
            return event(handle, await relay.join_audio(handle), t, plugin=AUDIOBRIDGE)
        case Speak():
            if jsep is None or jsep.type != "offer":
                raise InvalidInput("jsep：发布音频需要 offer", field="jsep")
            data, sdp = await relay.speak(handle, jsep.sdp)
            return event(handle, data, t, sdp, "answer", AUDIOBRIDGE)
    raise InvalidInput("request：不支持的请求", field="request")


def _body(frame: Frame, bodies: dict[tuple[str, str | None], type[Body]]) -> Body:
    body = frame.body or {}
    request, ptype = str(body.get("request")), body.get("ptype")
    model = bodies.get((request, ptype if isinstance(ptype, str) else None))
    if model is None:
        raise InvalidInput(f"request：不支持的请求 {quoted(request)}", field="request")
    return _checked(model, body)
