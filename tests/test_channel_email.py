"""E-mail channel against a real SMTP server: aiosmtpd's Controller, listening on 127.0.0.1 in its own thread.

The test reads the bytes the server received and parses them itself, so a mangled subject, a lost alternative
or an attachment changed by one byte fails here.
"""

import asyncio
import email
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from broadcast.channel import Attachment, Message
from broadcast.channels.email import EmailChannel
from tests.support.channel_peers import Recorder, free_port

SUBJECT = "【橙色预警】太原市气象台发布暴雨橙色预警信号"
TEXT = "太原市气象台2025年7月30日14时发布暴雨橙色预警信号：预计未来3小时内将出现50毫米以上降水，请注意防范。"
HTML = "<html><body><p><b>暴雨橙色预警</b></p><p>请注意防范。</p></body></html>"
CAP = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
    "<identifier>14010041600000000202507301400001</identifier><info><language>zh-CN</language>"
    "<event>暴雨</event><headline>暴雨橙色预警</headline></info></alert>\n"
).encode()
BINARY = bytes(range(256)) * 4  # every byte value, CR and LF included


def _message(recipient: str, n: int = 0) -> Message:
    return Message(
        delivery_id=f"w1:email:{recipient}:{n}",
        recipient=recipient,
        text=TEXT,
        subject=SUBJECT,
        html=HTML,
        attachments=(
            Attachment("14010041600000000202507301400001.xml", "application/cap+xml", CAP),
            Attachment("雷达图.bin", "application/octet-stream", BINARY),
        ),
    )


async def test_chinese_mail_with_alternative_and_attachments_arrives_intact(smtp_server) -> None:
    controller, recorder = smtp_server
    channel = EmailChannel("127.0.0.1", controller.port, "alerts@switchboard.test", concurrency=2)
    await channel.start(_no_receipts)
    try:
        result = await channel.send(_message("duty@example.test"))
    finally:
        await channel.stop()
    assert result.accepted, result
    assert result.remote_id and result.remote_id.startswith("<")

    [(rcpt, raw)] = recorder.received
    assert rcpt == ["duty@example.test"]
    mail: EmailMessage = email.message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == SUBJECT
    assert mail["Message-ID"] == result.remote_id
    assert mail["X-Switchboard-Delivery"] == "w1:email:duty@example.test:0"
    assert mail.get_content_type() == "multipart/mixed"
    assert mail.get_body(("plain",)).get_content().rstrip("\n") == TEXT
    assert mail.get_body(("html",)).get_content().rstrip("\n") == HTML
    attachments = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(attachments) == {"14010041600000000202507301400001.xml", "雷达图.bin"}
    cap = attachments["14010041600000000202507301400001.xml"]
    assert cap.get_content_type() == "application/cap+xml"
    assert cap.get_payload(decode=True) == CAP
    assert attachments["雷达图.bin"].get_payload(decode=True) == BINARY


async def test_4xx_is_retryable_5xx_permanent_and_neither_raises(smtp_server) -> None:
    controller, recorder = smtp_server
    channel = EmailChannel("127.0.0.1", controller.port, "alerts@switchboard.test")
    await channel.start(_no_receipts)
    try:
        busy = await channel.send(_message("busy@example.test"))
        nobody = await channel.send(_message("nobody@example.test"))
        broken = await channel.send(_message("bad\r\nBcc: x@example.test"))
        ok = await channel.send(_message("ok@example.test"))  # the session survives refusals
    finally:
        await channel.stop()
    assert (busy.accepted, busy.permanent) == (False, False) and "451" in busy.detail
    assert (nobody.accepted, nobody.permanent) == (False, True) and "550" in nobody.detail
    assert (broken.accepted, broken.permanent) == (False, True)
    assert ok.accepted
    assert [rcpt for rcpt, _ in recorder.received] == [["ok@example.test"]]


async def test_server_down_is_retryable_and_pool_recovers_after_restart() -> None:
    port = free_port()
    channel = EmailChannel("127.0.0.1", port, "alerts@switchboard.test", timeout=5)
    await channel.start(_no_receipts)
    try:
        down = await channel.send(_message("a@example.test"))
        assert (down.accepted, down.permanent) == (False, False)

        recorder = Recorder()
        controller = Controller(recorder, hostname="127.0.0.1", port=port)
        controller.start()
        assert (await channel.send(_message("a@example.test"))).accepted
        controller.stop()  # the pooled session is now dead
        controller = Controller(recorder, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            assert (await channel.send(_message("b@example.test"))).accepted
        finally:
            controller.stop()
    finally:
        await channel.stop()
    assert [rcpt for rcpt, _ in recorder.received] == [["a@example.test"], ["b@example.test"]]


async def test_concurrent_sends_share_a_small_pool(smtp_server) -> None:
    controller, recorder = smtp_server
    channel = EmailChannel("127.0.0.1", controller.port, "alerts@switchboard.test", concurrency=3)
    await channel.start(_no_receipts)
    try:
        results = await asyncio.gather(*(channel.send(_message(f"u{i}@example.test", i)) for i in range(60)))
        assert len(channel._idle) <= 3
    finally:
        await channel.stop()
    assert all(r.accepted for r in results)
    assert len({r.remote_id for r in results}) == 60
    got = sorted(rcpt[0] for rcpt, _ in recorder.received)
    assert got == sorted(f"u{i}@example.test" for i in range(60))
    for _, raw in recorder.received:
        mail = email.message_from_bytes(raw, policy=policy.default)
        assert mail["Subject"] == SUBJECT


async def test_start_and_stop_are_idempotent(smtp_server) -> None:
    controller, _ = smtp_server
    channel = EmailChannel("127.0.0.1", controller.port, "alerts@switchboard.test")
    assert not (await channel.send(_message("early@example.test"))).accepted  # not started: no raise
    await channel.start(_no_receipts)
    await channel.start(_no_receipts)
    assert (await channel.send(_message("x@example.test"))).accepted
    await channel.stop()
    await channel.stop()
    assert channel._idle == []


async def _no_receipts(channel: str, remote_id: str, delivered: bool, detail: str) -> None:
    raise AssertionError("SMTP has no receipts")


async def test_health_is_what_the_last_contact_with_the_relay_said() -> None:
    port = free_port()
    channel = EmailChannel("127.0.0.1", port, "alerts@switchboard.test", timeout=5)
    assert channel.health() == {"status": "down", "error": "渠道未启动"}
    await channel.start(_no_receipts)
    try:
        assert channel.health() == {"status": "ok"}  # configured; nothing tried yet, so nothing says otherwise
        assert not (await channel.send(_message("a@example.test"))).accepted
        down = channel.health()
        assert down["status"] == "down" and "无法连接邮件服务器" in down["error"] and down["checked_at"], down

        controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            assert not (await channel.send(_message("nobody@example.test"))).accepted  # refused, but answered
            assert channel.health().keys() == {"status", "checked_at"} and channel.health()["status"] == "ok"
        finally:
            controller.stop()
    finally:
        await channel.stop()
    assert channel.health()["status"] == "down"
