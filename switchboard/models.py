"""Every table of the switchboard, imported in one place so Alembic sees the whole schema."""

from broadcast.models import Delivery, PublicWarning
from conference.bridges.models import BridgeSession, Participant
from conference.video.models import Consultation, Invite
from recording.models import Recording
from sip.fax.models import Fax
from sip.models import Call
from switchboard.auth.models import User
from switchboard.cameras.models import Camera, CameraChannel
from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.db import Base
from switchboard.directory.models import ContactPoint, DutyShift, Group, GroupMember, Organisation, Person
from switchboard.incidents.models import Incident, Report, TimelineEntry
from switchboard.linechecks.models import LineCheck
from switchboard.notices.models import Notice, NoticeRecipient

__all__ = [
    "AuditEntry",
    "AuditHead",
    "Base",
    "BridgeSession",
    "Call",
    "Camera",
    "CameraChannel",
    "Consultation",
    "ContactPoint",
    "Delivery",
    "DutyShift",
    "Fax",
    "Group",
    "GroupMember",
    "Incident",
    "Invite",
    "LineCheck",
    "Notice",
    "NoticeRecipient",
    "Organisation",
    "Participant",
    "Person",
    "PublicWarning",
    "Recording",
    "Report",
    "TimelineEntry",
    "User",
]
