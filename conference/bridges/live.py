"""What is in each bridge right now, as Asterisk reports it (ConfbridgeJoin/Leave/Talking/Mute events and, after a
reconnect, ConfbridgeListRooms/ConfbridgeList). Kept in memory: Asterisk is the truth, the database the record."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Member:
    channel: str
    name: str
    number: str
    role: str  # moderator, participant
    participant_id: str | None = None
    muted: bool = False
    talking: bool = False

    def out(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Room:
    bridge: str
    members: dict[str, Member] = field(default_factory=dict)  # by channel
    locked: bool = False
    recording: bool = False

    def by_participant(self, participant_id: str) -> Member | None:
        return next((m for m in self.members.values() if m.participant_id == participant_id), None)


def yes(value: object) -> bool:
    return str(value).strip().lower() in ("yes", "true", "1", "on")


def member_of(message: Mapping[str, Any], participant_id: str | None) -> Member:
    """A member from a ConfbridgeJoin or ConfbridgeList message."""
    number = message.get("CallerIDNum", "") or ""
    name = message.get("CallerIDName", "") or ""
    return Member(
        channel=message.get("Channel", ""),
        name="" if name in ("<unknown>", "unknown") else name,
        number="" if number in ("<unknown>", "unknown") else number,
        role="moderator" if yes(message.get("Admin", "No")) else "participant",
        participant_id=participant_id,
        muted=yes(message.get("Muted", "No")),
        talking=yes(message.get("Talking", "No")),
    )
