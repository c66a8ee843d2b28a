"""Where a notice reaches a person on each channel: the one way from the directory (or a bare number) to the
addresses of a notice's deliveries, for its recipients, a warning's directory groups and the people later tiers
bring in."""

from broadcast.channels import voice
from switchboard.core import numbers
from switchboard.directory import service as directory
from switchboard.directory.models import ContactKind, ContactOut

# Which contact kinds each channel delivers to; voice calls a person's numbers in dispatch order instead.
CHANNEL_KINDS = {
    "sms": ContactKind.mobile,
    "email": ContactKind.email,
    "telegram": ContactKind.telegram,
    "wecom_app": ContactKind.wecom,
    "fax": ContactKind.fax,
}
CHANNELS = (voice.NAME, *CHANNEL_KINDS)
LINKED = ("email", "telegram", "wecom_app")  # channels whose message carries the signed confirmation link
_MOBILE = (ContactKind.mobile,)


def of_contact(contact: ContactOut, channels: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(channel, address) of a person: a voice call over their numbers in dispatch order (one delivery), each
    mobile by SMS, each address of the channel's kind otherwise."""
    found: list[tuple[str, str]] = []
    for channel in channels:
        if channel == voice.NAME:
            if dialled := [n for n, _ in directory.dial_numbers(contact)]:
                found.append((channel, voice.recipient(dialled)))
        elif channel == "sms":
            found += [(channel, mobile(n)) for n, _ in directory.dial_numbers(contact, _MOBILE)]
        elif channel == "fax":
            found += [(channel, n) for n, _ in directory.dial_numbers(contact, (ContactKind.fax,))]
        else:
            found += [(channel, c.value) for c in contact.contacts if c.kind == CHANNEL_KINDS[channel]]
    return list(dict.fromkeys(found))


def of_number(number: str, channels: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """A bare number: called, and sent an SMS when it is a mobile."""
    found = [(voice.NAME, numbers.dialled(number))] if voice.NAME in channels else []
    if "sms" in channels and is_mobile(mobile(number)):
        found.append(("sms", mobile(number)))
    return found


def is_mobile(number: str) -> bool:
    return len(number) == 11 and number.startswith("1")


def mobile(number: str) -> str:
    """A number as a phone sends it (+8613..., 8613...) in the form deliveries keep it."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
