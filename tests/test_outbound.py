"""Addresses users give the server to connect to (weather push endpoints, camera URLs) are allowed by configuration
only, checked after name resolution; the review made the weather push reach the cloud metadata address, the AMI
port and internal services, and read their replies in the deliveries report."""

from pathlib import Path

import httpx
import pytest

from broadcast.channel import Attachment, Message
from broadcast.channels.weather import CAP_XML, WeatherPushChannel
from switchboard.core.context import Context
from switchboard.core.errors import InvalidInput
from switchboard.core.outbound import REFUSED, OutboundPolicy
from tests.conftest import settings_for
from tests.test_warnings import BASE, add_group, content, incident


def _policy(tmp_path: Path, allow: str) -> OutboundPolicy:
    return OutboundPolicy.from_settings(settings_for(tmp_path, "sqlite://", SWITCHBOARD_NETWORK_OUTBOUND_ALLOW=allow))


@pytest.mark.parametrize(
    ("allow", "url", "allowed"),
    [
        ("", "https://weather.example.cn/cap", False),  # nothing listed: nothing allowed
        ("127.0.0.1/32", "http://127.0.0.1:8080/cap", True),
        ("127.0.0.1/32", "http://169.254.169.254/latest/meta-data/", False),  # metadata: link-local, not listed
        ("127.0.0.1/32", "http://localhost:5038/", False),  # the name is not listed
        ("localhost", "http://localhost:5038/", False),  # listed name, but it resolves to loopback, not listed
        ("localhost, 127.0.0.0/8", "http://localhost:5038/", True),
        ("127.0.0.1/32", "http://[::1]/cap", False),
        ("10.0.0.0/8", "http://10.20.30.40/cap", True),
        ("8.8.8.8", "https://8.8.8.8/cap", True),  # a public address, listed
        ("8.8.8.8", "ftp://8.8.8.8/cap", False),  # not a push scheme
        ("8.8.8.8", "http:///cap", False),
    ],
)
async def test_the_policy(tmp_path: Path, allow: str, url: str, allowed: bool) -> None:
    refusal = await _policy(tmp_path, allow).refusal(url, ("http", "https"))
    assert (refusal is None) == allowed, refusal


async def test_a_refusal_is_generic_and_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        await _policy(tmp_path, "").check("http://169.254.169.254/", schemes=("http",), field="url")
    assert (refused.value.message, refused.value.field) == (REFUSED, "url")
    assert "169.254" not in refused.value.message


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254/latest/meta-data/", "http://localhost:5038/"])
async def test_a_warning_cannot_name_an_internal_endpoint(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, endpoint: str
) -> None:
    group = await add_group(app_ctx, 1)
    audiences = {"groups": [group], "channels": ["sms"], "public": [{"channel": "weather", "recipient": endpoint}]}
    body = content(group, audiences=audiences) | {"incident_id": await incident(client, tokens)}
    refused = await client.post(BASE, json=body, headers=tokens["alert_officer"])
    assert refused.status_code == 422, refused.text
    assert refused.json() == {"error": "invalid", "message": REFUSED, "field": "audiences.public.0.recipient"}


async def test_the_channel_checks_again_when_it_pushes(tmp_path: Path) -> None:
    """A warning composed while an address was allowed is not pushed once the configuration no longer allows it."""
    channel = WeatherPushChannel(_policy(tmp_path, ""))
    await channel.start(lambda *_: None)  # type: ignore[arg-type,return-value]
    try:
        cap = Attachment("alert.xml", CAP_XML, b"<alert/>")
        message = Message("d1", "http://127.0.0.1:1/cap", "", attachments=(cap,))
        result = await channel.send(message)
    finally:
        await channel.stop()
    assert (result.accepted, result.permanent, result.detail) == (False, True, REFUSED)
