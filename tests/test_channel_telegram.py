"""Telegram channel against a stand-in Bot API server (tests/support/peers/telegram_api.py), served by uvicorn on
127.0.0.1 in the test's loop. It is a stand-in because no real Bot API server runs offline; it speaks the
documented HTTP interface (form and multipart requests, `ok`/`result`, `error_code` and
`parameters.retry_after`) so python-telegram-bot is exercised over real HTTP, and the test reads what arrived.
"""

import asyncio

import pytest

from broadcast.channel import Attachment, Message
from broadcast.channels.telegram import TelegramChannel
from tests.support.peers.telegram_api import TelegramApiStandIn

TOKEN = "123456:TEST-token"
HTML = "<b>【橙色预警】暴雨</b>\n太原市气象台发布暴雨橙色预警信号，<i>请注意防范</i>。"
CAP = '<?xml version="1.0" encoding="UTF-8"?>\n<alert><event>暴雨</event></alert>\n'.encode()


@pytest.fixture
async def api():
    stand_in = TelegramApiStandIn(TOKEN)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


def _channel(api: TelegramApiStandIn) -> TelegramChannel:
    return TelegramChannel(TOKEN, base_url=api.base_url)


async def _no_receipts(*args: object) -> None:
    raise AssertionError("the Bot API has no receipts")


async def test_html_message_and_cap_document_arrive(api: TelegramApiStandIn) -> None:
    channel = _channel(api)
    await channel.start(_no_receipts)
    try:
        result = await channel.send(
            Message("d1", "4242", HTML, attachments=(Attachment("预警.xml", "application/cap+xml", CAP),))
        )
    finally:
        await channel.stop()
    assert result.accepted, result
    assert channel.username == "switchboard_test_bot"
    assert [r.method for r in api.received] == ["getMe", "sendMessage", "sendDocument"]
    text, document = api.received[1], api.received[2]
    assert text.fields["chat_id"] == "4242"
    assert text.fields["text"] == HTML
    assert text.fields["parse_mode"] == "HTML"
    assert result.remote_id == "4242:1"
    filename, _, content = document.files["document"]
    assert document.fields["chat_id"] == "4242"
    assert filename == "预警.xml" and content == CAP


async def test_429_answers_retry_after_and_holds_the_channel(api: TelegramApiStandIn) -> None:
    channel = _channel(api)
    await channel.start(_no_receipts)
    try:
        api.flood(1, 2)
        flooded = await channel.send(Message("d1", "1001", "第一条"))
        held = await channel.send(Message("d2", "1002", "第二条"))
        calls_while_held = len(api.received)
        channel._hold_until = 0  # the outbox would wait retry_after; the test need not
        after = await channel.send(Message("d1", "1001", "第一条"))
    finally:
        await channel.stop()
    assert (flooded.accepted, flooded.permanent, flooded.retry_after) == (False, False, 2.0), flooded
    assert not held.accepted and held.retry_after is not None and 0 < held.retry_after <= 2
    assert calls_while_held == 2  # getMe and the flooded sendMessage: the held send never called the API
    assert after.accepted
    assert [r.fields.get("chat_id") for r in api.received if r.method == "sendMessage"] == ["1001", "1001"]


async def test_bad_and_blocked_chats_are_permanent(api: TelegramApiStandIn) -> None:
    api.bad_chats.add("404")
    api.blocked_chats.add("403")
    channel = _channel(api)
    await channel.start(_no_receipts)
    try:
        missing = await channel.send(Message("d1", "404", "x"))
        blocked = await channel.send(Message("d2", "403", "x"))
        fine = await channel.send(Message("d3", "5", "x"))
    finally:
        await channel.stop()
    assert (missing.accepted, missing.permanent) == (False, True) and "chat not found" in missing.detail.lower()
    assert (blocked.accepted, blocked.permanent) == (False, True)
    assert fine.accepted


async def test_api_unreachable_is_retryable_and_start_stop_idempotent(api: TelegramApiStandIn) -> None:
    await api.stop()  # nothing listens now
    channel = _channel(api)
    await channel.start(_no_receipts)  # getMe fails: logged, not raised
    await channel.start(_no_receipts)
    down = await channel.send(Message("d1", "1", "x"))
    assert (down.accepted, down.permanent) == (False, False), down
    await api.start()
    try:
        assert (await channel.send(Message("d1", "1", "x"))).accepted  # getMe retried lazily
    finally:
        await channel.stop()
        await channel.stop()
    assert not (await channel.send(Message("d2", "1", "x"))).accepted


async def test_concurrent_sends(api: TelegramApiStandIn) -> None:
    channel = _channel(api)
    await channel.start(_no_receipts)
    try:
        results = await asyncio.gather(*(channel.send(Message(f"d{i}", str(100 + i), f"第{i}条")) for i in range(30)))
    finally:
        await channel.stop()
    assert all(r.accepted for r in results)
    assert len({r.remote_id for r in results}) == 30


async def test_health_follows_the_api_and_never_shows_the_token(api: TelegramApiStandIn) -> None:
    await api.stop()
    channel = _channel(api)
    assert channel.health() == {"status": "down", "error": "渠道未启动"}
    await channel.start(_no_receipts)  # getMe fails
    try:
        down = channel.health()
        assert down["status"] == "down" and down["error"].startswith("getMe: NetworkError"), down
        await api.start()
        assert (await channel.send(Message("d1", "1", "x"))).accepted
        assert channel.health()["status"] == "ok"
    finally:
        await channel.stop()

    refused = TelegramChannel("999:wrong-token", base_url=api.base_url)
    await refused.start(_no_receipts)
    try:
        health = refused.health()
        assert health["status"] == "down" and "InvalidToken" in health["error"] and "wrong-token" not in str(health)
        result = await refused.send(Message("d2", "1", "x"))
        assert result.permanent and "wrong-token" not in result.detail
    finally:
        await refused.stop()
