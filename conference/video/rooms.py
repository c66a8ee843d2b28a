"""VideoRoom requests, by the plugin's names: create, exists, destroy, listparticipants, kick, moderate,
allowed, enable_recording. Every room is created with its secret, PIN and ACL (the join tokens of its invites),
records into its own folder, reports who is talking, and routes VP8 and H.264 without transcoding."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conference.video.session import JanusRequestFailed, JanusSession

NO_SUCH_ROOM = 426
AUDIO_MID = "0"  # the join page adds its microphone first, then its camera


@dataclass(frozen=True)
class RoomSpec:
    room: int
    description: str
    secret: str
    pin: str
    publishers: int
    rec_dir: Path
    allowed: list[str]


@dataclass(frozen=True)
class Participant:
    id: int
    display: str
    publisher: bool
    talking: bool


class Rooms:
    def __init__(self, session: JanusSession, admin_key: str) -> None:
        self.session = session
        self.admin_key = admin_key

    async def create(self, spec: RoomSpec) -> None:
        """Create the room, or leave it be when it exists (after a control-plane restart Janus still has it)."""
        if await self.exists(spec.room):
            return
        spec.rec_dir.mkdir(parents=True, exist_ok=True)
        body: dict[str, Any] = {
            "request": "create",
            "admin_key": self.admin_key,
            "room": spec.room,
            "description": spec.description[:100],
            "is_private": True,  # not in the plugin's room list: browsers reach Janus's API too
            "secret": spec.secret,
            "publishers": spec.publishers,
            "videocodec": "vp8,h264",
            "audiocodec": "opus",
            "bitrate": 1_000_000,
            "fir_freq": 5,
            "notify_joining": True,
            "audiolevel_event": True,
            "audio_active_packets": 50,
            "audio_level_average": 40,
            "rec_dir": str(spec.rec_dir),
            "lock_record": True,
            "allowed": spec.allowed,
        }
        if spec.pin:
            body["pin"] = spec.pin
        await self.session.request(body)

    async def exists(self, room: int) -> bool:
        return bool((await self.session.request({"request": "exists", "room": room})).get("exists"))

    async def destroy(self, room: int, secret: str) -> None:
        try:
            await self.session.request({"request": "destroy", "room": room, "secret": secret})
        except JanusRequestFailed as exc:
            if exc.code != NO_SUCH_ROOM:
                raise

    async def participants(self, room: int) -> list[Participant]:
        data = await self.session.request({"request": "listparticipants", "room": room})
        return [
            Participant(p["id"], p.get("display", ""), bool(p.get("publisher")), bool(p.get("talking")))
            for p in data.get("participants", [])
        ]

    async def kick(self, room: int, secret: str, participant: int) -> None:
        await self.session.request({"request": "kick", "room": room, "secret": secret, "id": participant})

    async def mute(self, room: int, secret: str, participant: int, muted: bool, mid: str = AUDIO_MID) -> None:
        body = {"request": "moderate", "room": room, "secret": secret, "id": participant, "mid": mid, "mute": muted}
        await self.session.request(body)

    async def allow(self, room: int, secret: str, tokens: list[str], action: str = "add") -> None:
        """Change the room's ACL: action add, remove or enable."""
        body = {"request": "allowed", "room": room, "secret": secret, "action": action, "allowed": tokens}
        await self.session.request(body)

    async def record(self, room: int, secret: str, on: bool) -> None:
        await self.session.request({"request": "enable_recording", "room": room, "secret": secret, "record": on})
