"""Warning channels, each behind the one `broadcast.channel.Channel` interface.

- `email.EmailChannel`: SMTP with aiosmtplib (UTF-8 headers and body, HTML + text, attachments).
- `sms.SmsChannel`: SMPP 3.4 (`broadcast.smpp`), one transceiver or a transmitter and receiver pair, GSM-7 or
  UCS-2 with UDH concatenation, delivery receipts.
- `telegram.TelegramChannel`: Bot API with python-telegram-bot.
- `weather.WeatherPushChannel`: the CAP document POSTed to the weather service's endpoints.
- `cmpp.CmppChannel` (China Mobile, CMPP 2.0/3.0), `smgp.SmgpChannel` (China Telecom, SMGP 3.0) and
  `sgip.SgipChannel` (China Unicom, SGIP 1.2), on the sending path they share with SMPP (`gateway.py`) and one
  windowed link and session policy (`broadcast.framing`, `broadcast.gateway_session`); `carriers.CarrierRouter`
  puts the configured SMS gateways behind one "sms" channel, each number to its carrier's gateway by number segment.
- `wecom.WeComRobotChannel`, `wecom.WeComAppChannel` and `dingtalk.DingTalkRobotChannel`: WeCom group robots and
  application messages, DingTalk signed robots (`chat.py`, `http_channel.py`).
- `voice.VoiceChannel`: warnings read out over the phone, confirmed with a key; it calls through Asterisk, so the
  wiring builds it on the call service (`switchboard/telephony.py`, configured by [voice]), not `from_settings`.

The modules are imported by name (``from broadcast.channels.sms import SmsChannel``) so that a process which
drives one channel does not load the others' client libraries; `from_settings` imports only the configured ones.
"""

from switchboard.core.config import Settings
from switchboard.core.outbound import OutboundPolicy

from ..channel import Channel
from .gateway import MobileOriginatedHandler


def from_settings(settings: Settings, on_mobile_originated: MobileOriginatedHandler | None = None) -> list[Channel]:
    """The channels the [channels] section turns on. The SMS gateways (SMPP, CMPP, SMGP, SGIP) become one channel,
    "sms", that routes each number to its carrier's gateway ([channels] sms_routes); each hands the messages
    phones send to it (replies) to `on_mobile_originated`."""
    c = settings.channels
    policy = OutboundPolicy.from_settings(settings)
    channels: list[Channel] = []
    if gateways := _sms_gateways(settings, on_mobile_originated):
        from .carriers import CarrierRouter

        routes = _pairs(c.sms_routes)
        channels.append(CarrierRouter(gateways, routes, default=c.sms_default_route or gateways[0].name))
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
        from .weather import WeatherPushChannel

        channels.append(WeatherPushChannel(policy))
    if c.wecom_robot:
        from .wecom import WeComRobotChannel

        channels.append(WeComRobotChannel(policy, base_url=c.wecom_robot_base_url))
    if c.wecom_corpid:
        from .wecom import WeComAppChannel

        channels.append(
            WeComAppChannel(c.wecom_corpid, c.wecom_corpsecret, c.wecom_agentid, base_url=c.wecom_app_base_url)
        )
    if c.dingtalk:
        from .dingtalk import DingTalkRobotChannel

        channels.append(DingTalkRobotChannel(_pairs(c.dingtalk_secrets), policy, base_url=c.dingtalk_base_url))
    return channels


def _pairs(text: str) -> dict[str, str]:
    """ "a=x, b=y" -> {"a": "x", "b": "y"}: how [channels] writes routes and robot secrets."""
    return dict(pair.strip().split("=", 1) for pair in text.split(",") if "=" in pair)


def _sms_gateways(settings: Settings, on_mobile_originated: MobileOriginatedHandler | None) -> list[Channel]:
    c = settings.channels
    gateways: list[Channel] = []
    if c.sms_host:
        from .sms import SmsChannel

        gateways.append(
            SmsChannel(
                c.sms_host,
                c.sms_port,
                c.sms_system_id,
                c.sms_password,
                source_addr=c.sms_source_addr,
                source_addr_ton=None if c.sms_source_ton < 0 else c.sms_source_ton,
                source_addr_npi=None if c.sms_source_npi < 0 else c.sms_source_npi,
                bind=c.sms_bind,
                rate_per_second=c.sms_rate_per_second,
                name="smpp",
                on_mobile_originated=on_mobile_originated,
            )
        )
    if c.cmpp_host:
        from .cmpp import CmppChannel

        gateways.append(
            CmppChannel(
                c.cmpp_host,
                c.cmpp_port,
                c.cmpp_source_addr,
                c.cmpp_secret,
                src_id=c.cmpp_src_id,
                service_id=c.cmpp_service_id,
                version=c.cmpp_version,
                rate_per_second=c.cmpp_rate_per_second,
                on_mobile_originated=on_mobile_originated,
            )
        )
    if c.smgp_host:
        from .smgp import SmgpChannel

        gateways.append(
            SmgpChannel(
                c.smgp_host,
                c.smgp_port,
                c.smgp_client_id,
                c.smgp_secret,
                src_term_id=c.smgp_src_term_id,
                service_id=c.smgp_service_id,
                rate_per_second=c.smgp_rate_per_second,
                on_mobile_originated=on_mobile_originated,
            )
        )
    if c.sgip_host:
        from .sgip import SgipChannel

        gateways.append(
            SgipChannel(
                c.sgip_host,
                c.sgip_port,
                c.sgip_login_name,
                c.sgip_password,
                sp_number=c.sgip_sp_number,
                corp_id=c.sgip_corp_id,
                node_id=c.sgip_node_id,
                service_type=c.sgip_service_type,
                listen_host=c.sgip_listen_host,
                listen_port=c.sgip_listen_port,
                listen_login_name=c.sgip_listen_login_name,
                listen_password=c.sgip_listen_password,
                rate_per_second=c.sgip_rate_per_second,
                on_mobile_originated=on_mobile_originated,
            )
        )
    return gateways
