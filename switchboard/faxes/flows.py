"""Fax flows: sending a document to numbers, contacts and groups for an incident, and filing what arrives."""

import re
from datetime import datetime
from pathlib import Path

from recording.store import RecordingStore
from sip.fax.models import Fax
from sip.fax.service import FaxService, Recipient
from switchboard.core import numbers
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.errors import InvalidInput
from switchboard.directory import service as directory
from switchboard.directory.models import ContactKind, ContactOut
from switchboard.incidents import service as incidents

_SPLIT = re.compile(r"[\s,;，；、]+")
_FAX = (ContactKind.fax,)


def items(text: str) -> list[str]:
    """A form field's list: numbers or ids separated by spaces, commas or semicolons (Chinese ones too)."""
    return [item for item in _SPLIT.split(text or "") if item]


async def send(
    ctx: Context,
    faxes: FaxService,
    actor: str,
    document: bytes,
    *,
    document_name: str,
    to_numbers: list[str],
    contact_ids: list[str],
    group_ids: list[str],
    incident_id: str | None,
    cover: dict[str, str] | None,
) -> tuple[list[Fax], list[dict[str, str]]]:
    """One job per recipient, written before this returns; `cover` (subject, note) puts a cover page in front.
    Returns the jobs and the group members skipped for want of a fax number."""
    incident = await incidents.filed_under(ctx, incident_id)
    recipients, skipped = await _recipients(ctx, to_numbers, contact_ids, group_ids)
    if cover is not None:
        names = "、".join(r.name or r.number for r in recipients[:5]) + ("等" if len(recipients) > 5 else "")
        cover = cover | {"recipients": names, "incident": incident.title if incident else ""}
    sent = await faxes.submit(
        actor, document, recipients, document_name=document_name, incident_id=incident_id, cover=cover
    )
    detail = {"numbers": [r.number for r in recipients], "pages": sent[0].pages_total, "incident_id": incident_id}
    await audit.record_alone(ctx, actor, "fax.send", "fax_batch", sent[0].batch_id or "", detail)
    return sent, skipped


async def _recipients(
    ctx: Context, raw_numbers: list[str], contact_ids: list[str], group_ids: list[str]
) -> tuple[list[Recipient], list[dict[str, str]]]:
    """Numbers as given, each contact's fax number, each group member's fax number; one job per number."""
    found: dict[str, Recipient] = {}
    skipped: list[dict[str, str]] = []
    for raw in raw_numbers:
        number = numbers.normalise(raw, field="numbers")
        known = await directory.find_by_number(ctx, number)
        found.setdefault(number, Recipient(number, known.name if known else "", known.id if known else None))
    people: list[ContactOut] = []
    for contact_id in contact_ids:
        contact = await directory.contact_for(ctx, contact_id, field="contact_ids")
        if not directory.dial_numbers(contact, _FAX):
            raise InvalidInput(f"联系人 {contact.name} 没有登记传真号码", field="contact_ids")
        people.append(contact)
    for group_id in group_ids:
        for member in await directory.group_members(ctx, group_id, field="group_ids"):
            if directory.dial_numbers(member, _FAX):
                people.append(member)
            else:
                skipped.append({"name": member.name, "reason": "没有登记传真号码"})
    for person in people:
        number, _ = directory.dial_numbers(person, _FAX)[0]
        found.setdefault(number, Recipient(number, person.name, person.id))
    if not found:
        raise InvalidInput("请至少指定一个收件人（号码、联系人或分组）", field="numbers")
    return list(found.values()), skipped


async def file_received(store: RecordingStore, pdf: Path, fax: Fax, started: datetime, ended: datetime) -> str:
    """A received fax's PDF into the recording store (the same SHA-256 ledger as call recordings): its id."""
    party = {"name": fax.party_name or fax.remote_station, "number": fax.number, "contact_id": fax.contact_id}
    recording = await store.file(
        pdf,
        kind="fax",
        started_at=started,
        ended_at=ended,
        incident_id=fax.incident_id,
        source_id=fax.id,
        parties=[{k: v for k, v in party.items() if v}],
    )
    return recording.id
