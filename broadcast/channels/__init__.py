"""Warning channels, each behind the one `broadcast.channel.Channel` interface.

- `email.EmailChannel`: SMTP with aiosmtplib (UTF-8 headers and body, HTML + text, attachments).
- `sms.SmsChannel`: SMPP 3.4 transceiver (`broadcast.smpp`), UCS-2 with UDH concatenation, delivery receipts.
- `telegram.TelegramChannel`: Bot API with python-telegram-bot.
- `weather.WeatherPushChannel`: the CAP document POSTed to the weather service's endpoints.

The modules are imported by name (``from broadcast.channels.sms import SmsChannel``) so that a process which
drives one channel does not load the others' client libraries; `from_settings` imports only the configured ones.
"""

from switchboard.core.config import Settings

from ..channel import Channel


def from_settings(settings: Settings) -> list[Channel]:
    """The channels the [channels] section turns on."""
    c = settings.channels
    channels: list[Channel] = []
    if c.sms_host:
        from .sms import SmsChannel

        channels.append(
            SmsChannel(
                c.sms_host,
                c.sms_port,
                c.sms_system_id,
                c.sms_password,
                source_addr=c.sms_source_addr,
                source_addr_ton=None if c.sms_source_ton < 0 else c.sms_source_ton,
                source_addr_npi=None if c.sms_source_npi < 0 else c.sms_source_npi,
                rate_per_second=c.sms_rate_per_second,
            )
        )
    if c.smtp_host:
        from .email import EmailChannel

        channels.append(
            EmailChannel(
                c.smtp_host,
                c.smtp_port,
                c.smtp_sender,
                username=c.smtp_username or None,
                password=c.smtp_password or None,
                rate_per_second=c.smtp_rate_per_second,
            )
        )
    if c.telegram_token:
        from .telegram import TelegramChannel

        channels.append(TelegramChannel(c.telegram_token, base_url=c.telegram_base_url))
    if c.weather_push:
        from switchboard.core.outbound import OutboundPolicy

        from .weather import WeatherPushChannel

        channels.append(WeatherPushChannel(OutboundPolicy.from_settings(settings)))
    return channels
