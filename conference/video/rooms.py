"""VideoRoom requests, by the plugin's names: create, exists, destroy, listparticipants, kick, moderate,
allowed, enable_recording. Every room is created with its secret, PIN and ACL (the join tokens of its invites),
records into its own folder, reports who is talking, and routes VP8 and H.264 without transcoding.

Each consultation also has an AudioBridge room of the same number and secret: what everyone hears. Browsers
publish their microphone into it (group "web") and play its mix; the phones' link joins it as a plain-RTP
participant (group "phone", conference.video.phones). Sites' audio still reaches the VideoRoom too, for the
recordings and the active speaker, but pages do not play it (they would hear each site twice). Only the relay
joins browsers to it, and only after their VideoRoom join passed the ACL, lock and PIN; so it needs none itself."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conference.video.session import AUDIOBRIDGE, VIDEOROOM, JanusRequestFailed, JanusSession

NO_SUCH_ROOM = 426
NO_SUCH_AUDIO_ROOM = 485  # AudioBridge's numbers
NO_SUCH_USER = 492
WEB, PHONE = "web", "phone"  # AudioBridge groups: browsers, and the link carrying the phones
AUDIO_SAMPLING_RATE = 16000
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
    audio: bool = True  # an AudioBridge room of the same number beside it (consultations; not the camera room)


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
        """Create the room and its audio room, or leave them be when they exist (after a control-plane restart Janus
        still has them)."""
        if spec.audio:
            await self._create_audio(spec)
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

    async def _create_audio(self, spec: RoomSpec) -> None:
        if (await self.session.request({"request": "exists", "room": spec.room}, AUDIOBRIDGE)).get("exists"):
            return
        body = {
            "request": "create",
            "admin_key": self.admin_key,
            "room": spec.room,
            "description": spec.description[:100],
            "is_private": True,
            "secret": spec.secret,
            "sampling_rate": AUDIO_SAMPLING_RATE,
            "allow_rtp_participants": True,
            "groups": [WEB, PHONE],
        }
        await self.session.request(body, AUDIOBRIDGE)

    async def exists(self, room: int) -> bool:
        return bool((await self.session.request({"request": "exists", "room": room})).get("exists"))

    async def destroy(self, room: int, secret: str) -> None:
        for plugin, missing in ((VIDEOROOM, NO_SUCH_ROOM), (AUDIOBRIDGE, NO_SUCH_AUDIO_ROOM)):
            try:
                await self.session.request({"request": "destroy", "room": room, "secret": secret}, plugin)
            except JanusRequestFailed as exc:
                if exc.code != missing:
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
        """Mute a site where it is heard (AudioBridge) and where it is recorded (VideoRoom)."""
        body = {"request": "moderate", "room": room, "secret": secret, "id": participant, "mid": mid, "mute": muted}
        await self.session.request(body)
        heard = {"request": "mute" if muted else "unmute", "room": room, "secret": secret, "id": participant}
        try:
            await self.session.request(heard, AUDIOBRIDGE)
        except JanusRequestFailed as exc:
            if exc.code != NO_SUCH_USER:  # the site has not joined the audio room (yet)
                raise

    async def allow(self, room: int, secret: str, tokens: list[str], action: str = "add") -> None:
        """Change the room's ACL: action add, remove or enable."""
        body = {"request": "allowed", "room": room, "secret": secret, "action": action, "allowed": tokens}
        await self.session.request(body)

    async def record(self, room: int, secret: str, on: bool) -> None:
        await self.session.request({"request": "enable_recording", "room": room, "secret": secret, "record": on})
