"""A consultation's phones: an audio conference on Asterisk (ConfBridge `consult-<dial-in number>`,
dialplans/templates/consult.conf.j2) joined to the consultation's AudioBridge room in Janus by one plain-RTP link,
G.711 u-law both ways; Janus and Asterisk carry every packet, Python only sets the link up.

Neither end learns its peer from the packets it receives: AudioBridge's plain-RTP participant is told where to send
when it joins, Asterisk's UnicastRTP channel when it is created. So the link is made in three steps that need no
guess: (1) it joins the AudioBridge room as a plain-RTP participant without a peer (Janus binds a port on
`[janus] phone_address` and receives, sending nothing); (2) Asterisk originates UnicastRTP to that port into the
ConfBridge and says which address and port it sends from; (3) an RTP forwarder of the room sends the mix of the
browsers there (group "web": never the link itself, so the phones do not hear themselves back). The ConfBridge
mixes the phones and the link: the phones hear each other and the browsers, the browsers hear the phones.
Moderation of phones is ConfBridge's (ConfbridgeMute, ConfbridgeKick); the link joins marked and the phones
leave with it (`end_marked`), so closing a consultation hangs its phones up.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conference.video.client import JanusClient
from conference.video.rooms import PHONE, WEB
from conference.video.session import AUDIOBRIDGE, JanusLinkDown
from sip.ami import AmiSession
from sip.dialing import CALL_ID, DISPATCH_CONTEXT, INCIDENT_ID, RING_TIMEOUT, TARGETS, inherited
from switchboard.core.errors import Unavailable

log = logging.getLogger(__name__)

LINK_ID = 1  # the link's AudioBridge participant id (invites' ids are 1,000,000 and up)
LINK_CONTEXT = "consult-link"  # consult.conf.j2: the link leg into the ConfBridge
DIAL_IN_CONTEXT = "consult-in"  # consult.conf.j2: a phone into the ConfBridge (dial-in and dial-out alike)
PIN_VARIABLE = "SB_CONSULT_PIN_"  # + dial-in number: the global the dialplan compares a caller's PIN with


def conference(number: str) -> str:
    """The ConfBridge of the consultation holding dial-in `number`."""
    return f"consult-{number}"


@dataclass
class Phone:
    """A phone in a consultation, as ConfBridge reports it."""

    channel: str
    uniqueid: str
    number: str
    muted: bool = False
    talking: bool = False


@dataclass
class Link:
    client: JanusClient
    channel: str  # the UnicastRTP channel's uniqueid
    drain: asyncio.Task[None]
    phones: dict[str, Phone] = field(default_factory=dict)  # by uniqueid
    channel_gone: bool = False  # Asterisk hung it up, or restarted without it

    @property
    def alive(self) -> bool:
        return not self.client.closed.is_set() and not self.channel_gone


PhoneChange = Callable[[str, str, Phone], Awaitable[None]]  # (dial-in number, what, phone)


class Phones:
    """Every open consultation's link, by dial-in number."""

    def __init__(self, ami: AmiSession, api_socket: Path, admin_key: str) -> None:
        self.ami, self.api_socket, self.admin_key = ami, api_socket, admin_key
        self.links: dict[str, Link] = {}
        self._handlers: list[PhoneChange] = []
        ami.on_event(self._on_event)
        ami.on_resync(self._resync)

    def on_change(self, handler: PhoneChange) -> None:
        """`handler(number, what, phone)` for every phone that joins, leaves, is muted or unmuted, or talks."""
        self._handlers.append(handler)

    async def open(self, room: int, secret: str, number: str, incident_id: str | None, pin: str = "") -> None:
        """Link the AudioBridge room (conference.video.rooms makes it) to the ConfBridge of `number` (again, when
        the link was lost). Callers of a consultation with a `pin` key it in (the dialplan's global
        SB_CONSULT_PIN_<number>, digits only)."""
        if (link := self.links.get(number)) is not None and link.alive:
            return
        await self.close(number)
        await self._pin(number, pin)
        client = await JanusClient.open(self.api_socket)
        channel = f"consult-{number}-{secrets.token_hex(4)}"
        try:
            handle = await client.attach(AUDIOBRIDGE)
            janus_ip, janus_port = await self._join(client, handle, room)
            address, port = await self._originate(channel, number, janus_ip, janus_port, incident_id)
            forward = {"request": "rtp_forward", "room": room, "secret": secret, "admin_key": self.admin_key}
            forward |= {"group": WEB, "codec": "pcmu", "ptype": 0, "host": address, "port": port, "always_on": True}
            reply = await client.message(handle, forward)
            if reply.error:
                raise Unavailable(f"会商电话音频转发失败：{reply.error[1]}")
        except BaseException:
            await client.close()
            await self._hang_up(channel)
            raise
        drain = asyncio.create_task(_drain(client), name=f"consult-link-{number}")
        self.links[number] = Link(client, channel, drain)
        log.info("consultation room %s linked to %s (Asterisk %s:%s)", room, conference(number), address, port)

    async def close(self, number: str) -> None:
        """Undo the link: its phones leave the ConfBridge with it."""
        link = self.links.pop(number, None)
        if link is None:
            return
        with contextlib.suppress(Unavailable):
            await self._pin(number, "")
        await link.client.close()
        link.drain.cancel()
        await self._hang_up(link.channel)

    async def stop(self) -> None:
        for number in list(self.links):
            await self.close(number)

    def phones(self, number: str) -> list[Phone]:
        link = self.links.get(number)
        return list(link.phones.values()) if link else []

    def phone(self, number: str, uniqueid: str) -> Phone:
        link = self.links.get(number)
        if link is None or uniqueid not in link.phones:
            raise KeyError(uniqueid)
        return link.phones[uniqueid]

    async def mute(self, number: str, uniqueid: str, muted: bool) -> None:
        phone = self.phone(number, uniqueid)
        action = "ConfbridgeMute" if muted else "ConfbridgeUnmute"
        await self.ami.action({"Action": action, "Conference": conference(number), "Channel": phone.channel})

    async def kick(self, number: str, uniqueid: str) -> None:
        phone = self.phone(number, uniqueid)
        await self.ami.action({"Action": "ConfbridgeKick", "Conference": conference(number), "Channel": phone.channel})

    async def dial_out(
        self, number: str, call_id: str, dial_strings: list[str], ring_seconds: int, incident_id: str | None
    ) -> None:
        """Ring a party's numbers in turn through the dispatch loop; whoever answers joins the consultation's
        ConfBridge (as a dial-in phone does). Returns once Asterisk took the call."""
        if number not in self.links:
            raise Unavailable("会商的电话接入未就绪")
        await self.ami.action(
            {
                "Action": "Originate",
                "Channel": f"Local/s@{DISPATCH_CONTEXT}/n",
                "Context": DIAL_IN_CONTEXT,
                "Exten": number,
                "Priority": "1",
                "CallerID": f'"{number}" <{number}>',
                "Variable": [
                    inherited(INCIDENT_ID, incident_id or ""),
                    inherited(CALL_ID, call_id),
                    inherited(TARGETS, "&".join(dial_strings)),
                    inherited(RING_TIMEOUT, ring_seconds),
                    "SB_DIALOUT=1",  # called by us: no PIN asked
                ],
                "Async": "true",
                "ChannelId": call_id,
            },
            timeout=5,
            as_list=False,
        )

    # Setting the link up -----------------------------------------------------------------------------------

    async def _join(self, client: JanusClient, handle: int, room: int) -> tuple[str, int]:
        body = {"request": "join", "room": room, "id": LINK_ID, "group": PHONE, "display": "电话", "codec": "pcmu"}
        reply = await client.message(handle, body | {"rtp": {}})
        rtp = reply.data.get("rtp") or {}
        if reply.error or not rtp.get("port"):
            raise Unavailable(f"会商电话音频接入失败：{(reply.error or (0, str(reply.data)))[1]}")
        return str(rtp["ip"]), int(rtp["port"])

    async def _originate(
        self, channel: str, number: str, janus_ip: str, janus_port: int, incident_id: str | None
    ) -> tuple[str, int]:
        """The UnicastRTP leg into the ConfBridge: the address and port Asterisk sends from (and listens on)."""
        fields = {
            "Action": "Originate",
            "Channel": f"UnicastRTP/{janus_ip}:{janus_port}/c(ulaw)",
            "Context": LINK_CONTEXT,
            "Exten": number,
            "Priority": "1",
            "ChannelId": channel,
            "Variable": [inherited(INCIDENT_ID, incident_id or "")],
            "Async": "true",
        }
        responses = await self.ami.action(fields, timeout=15)
        final = next((m for m in _listed(responses) if m.get("Event") == "OriginateResponse"), None)
        if final is not None and final.get("Response") != "Success":
            raise Unavailable(f"交换机未能接通会商音频：{final.get('Reason', '')}")
        address = await self._variable(channel, "UNICASTRTP_LOCAL_ADDRESS")
        port = await self._variable(channel, "UNICASTRTP_LOCAL_PORT")
        if not address or not port.isdigit():
            raise Unavailable("交换机未给出会商音频的本地地址")
        return address, int(port)

    async def _pin(self, number: str, pin: str) -> None:
        digits = "".join(c for c in pin if c.isdigit())
        await self.ami.action({"Action": "Setvar", "Variable": f"{PIN_VARIABLE}{number}", "Value": digits})

    async def _variable(self, channel: str, name: str) -> str:
        reply = await self.ami.action({"Action": "Getvar", "Channel": channel, "Variable": name})
        return str(reply.get("Value") or "")

    async def _hang_up(self, channel: str) -> None:
        with contextlib.suppress(Unavailable):
            await self.ami.action({"Action": "Hangup", "Channel": channel})

    # What ConfBridge says ---------------------------------------------------------------------------------------

    async def _resync(self, channels: list[Any]) -> None:
        """After an AMI reconnect: a link whose channel Asterisk no longer has (it restarted) is made again."""
        present = {str(c.get("Uniqueid", "")) for c in channels}
        for link in self.links.values():
            if link.channel not in present:
                link.channel_gone = True

    async def _on_event(self, message: Mapping[str, Any]) -> None:
        name = str(message.get("Event", ""))
        if name == "Hangup":
            for link in self.links.values():
                link.channel_gone |= message.get("Uniqueid") == link.channel
            return
        room = str(message.get("Conference", ""))
        if not name.startswith("Confbridge") or not room.startswith("consult-"):
            return
        number = room.removeprefix("consult-")
        link = self.links.get(number)
        uniqueid = str(message.get("Uniqueid", ""))
        if link is None or not uniqueid or uniqueid == link.channel:
            return
        if name == "ConfbridgeJoin":
            caller = str(message.get("CallerIDNum", ""))
            phone = Phone(str(message.get("Channel", "")), uniqueid, caller if caller.strip("+").isdigit() else "")
            phone.muted = str(message.get("Muted", "")).lower() == "yes"
            link.phones[uniqueid] = phone
            what = "joined"
        elif name == "ConfbridgeLeave" and uniqueid in link.phones:
            phone, what = link.phones.pop(uniqueid), "left"
        elif name in ("ConfbridgeMute", "ConfbridgeUnmute") and uniqueid in link.phones:
            phone, what = link.phones[uniqueid], "muted"
            phone.muted = name == "ConfbridgeMute"
        elif name == "ConfbridgeTalking" and uniqueid in link.phones:
            phone, what = link.phones[uniqueid], "talking"
            phone.talking = str(message.get("TalkingStatus", "")).lower() == "on"
        else:
            return
        for handler in self._handlers:
            try:
                await handler(number, what, phone)
            except Exception:
                log.exception("consultation phone handler failed")


def _listed(response: Any) -> list[Any]:
    return response if isinstance(response, list) else [response]


async def _drain(client: JanusClient) -> None:
    """Take the room's notifications to the link (joins, talking) nobody reads, so its session stays open."""
    with contextlib.suppress(JanusLinkDown):
        while await client.next_event() is not None:
            pass
