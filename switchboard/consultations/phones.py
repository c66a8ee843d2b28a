"""Phones in consultations, the live side: each open consultation's dial-in number linked to its room
(conference.video.phones), kept linked while Janus and Asterisk come and go, and each phone that joins, leaves,
is muted or talks published with its name from the directory."""

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select

from conference.video.models import Consultation
from conference.video.phones import Phone, Phones
from switchboard.core.context import Context
from switchboard.core.errors import Conflict, NotFound, Unavailable
from switchboard.core.events import Event
from switchboard.directory import service as directory

log = logging.getLogger(__name__)

_SAID = {"joined": "电话接入", "left": "电话离开"}


class PhoneSide:
    def __init__(self, ctx: Context, phones: Phones, numbers: list[str], dial_string: Callable[[str], str]) -> None:
        self.ctx, self.phones, self.numbers, self.dial_string = ctx, phones, numbers, dial_string
        self.names: dict[str, dict[str, str]] = {}  # caller number -> name, org (from the directory, when known)
        self._consultations: dict[str, Consultation] = {}  # dial-in number -> its open consultation
        self._allocating = asyncio.Lock()
        phones.on_change(self._changed)

    async def allocate(self) -> str:
        """A dial-in number no open consultation holds ("" when all are taken: the consultation takes no phones).
        Callers hold `allocating` until the consultation holding it is written."""
        async with self.ctx.db.reader() as session:
            held = set((await session.scalars(select(Consultation.dial_in).where(Consultation.state == "open"))).all())
        return next((n for n in self.numbers if n not in held), "")

    @property
    def allocating(self) -> asyncio.Lock:
        return self._allocating

    async def link_all(self) -> None:
        """Every open consultation with a dial-in number linked (again, after Janus or Asterisk restarted); links
        of consultations no longer open undone."""
        async with self.ctx.db.reader() as session:
            query = select(Consultation).where(Consultation.state == "open", Consultation.dial_in != "")
            open_ones = {c.dial_in: c for c in (await session.scalars(query)).all()}
        self._consultations = open_ones
        for number in set(self.phones.links) - open_ones.keys():
            await self.phones.close(number)
        for consultation in open_ones.values():
            try:
                await self._open(consultation)
            except Unavailable as exc:
                log.warning("phones of consultation %s not linked yet: %s", consultation.id, exc)

    async def link(self, consultation: Consultation) -> None:
        if consultation.dial_in:
            self._consultations[consultation.dial_in] = consultation
            await self._open(consultation)

    async def _open(self, c: Consultation) -> None:
        await self.phones.open(c.room, c.secret, c.dial_in, c.incident_id, c.pin)

    async def unlink(self, consultation: Consultation) -> None:
        if consultation.dial_in:
            self._consultations.pop(consultation.dial_in, None)
            await self.phones.close(consultation.dial_in)

    async def listed(self, consultation: Consultation) -> list[dict[str, object]]:
        phones = self.phones.phones(consultation.dial_in) if consultation.dial_in else []
        for phone in phones:
            await self._name(phone)
        return [self.out(p) for p in phones]

    async def _name(self, phone: Phone) -> None:
        """Who the directory says calls from the phone's number (looked up once per number)."""
        if phone.number and phone.number not in self.names:
            self.names[phone.number] = await directory.caller(self.ctx, phone.number) or {}

    def out(self, phone: Phone) -> dict[str, object]:
        who = self.names.get(phone.number, {})
        return {
            "phone_id": phone.uniqueid,
            "number": phone.number,
            "name": who.get("name", ""),
            "org": who.get("org", ""),
            "muted": phone.muted,
            "talking": phone.talking,
        }

    def phone(self, consultation: Consultation, phone_id: str) -> Phone:
        if not consultation.dial_in:
            raise Conflict("本次会商没有电话接入", field="consultation_id")
        try:
            return self.phones.phone(consultation.dial_in, phone_id)
        except KeyError:
            raise NotFound(f"电话参会方 {phone_id} 不在会商中", field="phone_id") from None

    async def _changed(self, number: str, what: str, phone: Phone) -> None:
        consultation = self._consultations.get(number)
        if consultation is None:
            return
        await self._name(phone)
        shown = self.out(phone)
        label = f"{shown['name'] or '电话'}（{phone.number or '未知号码'}）"
        data: dict[str, object] = {"consultation_id": consultation.id, **shown}
        if what in _SAID:
            data["summary"] = f"{label}{_SAID[what]}视频会商《{consultation.title}》"
        event = Event(f"consultation.phone_{what}", data=data, incident_id=consultation.incident_id)
        await self.ctx.bus.publish(event)
