"""SMS through Alibaba Cloud (dysmsapi SendSms), for the plan levels set in sms.levels (II and I).

An SMS carries an approved template filled with parameters (level, title, incident number), never
free text. Requests are signed as Alibaba Cloud's RPC signature v1 documents: the parameters sorted,
percent-encoded (RFC 3986), StringToSign = GET&%2F&encode(query), HMAC-SHA1 keyed with secret + "&",
base64. Replies carry a Code: OK; isv.BUSINESS_LIMIT_CONTROL / isv.DAY_LIMIT_CONTROL / Throttling.User
are throttling (retry later); a bad number, signature, template or key is permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import timedelta

from yuqing.alerts.channels.base import ChannelPlugin, Envelope, Rendered, post_json
from yuqing.alerts.outbox import Outgoing, RateLimited, SendError
from yuqing.channel_config import AliyunSms
from yuqing.clock import Clock
from yuqing.config import AppConfig, Recipient
from yuqing.vocabulary import Channel

log = logging.getLogger(__name__)

PARAM_CHARS = 35  # a template variable's value is refused above this (isv.PARAM_LENGTH_LIMIT)
THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL": timedelta(minutes=1), "Throttling.User": timedelta(minutes=1),
             "isv.DAY_LIMIT_CONTROL": timedelta(hours=1), "isv.AMOUNT_NOT_ENOUGH": timedelta(minutes=30)}
PERMANENT = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL",
             "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_PARAMETERS", "isv.INVALID_JSON_PARAM",
             "isv.PARAM_LENGTH_LIMIT", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL", "isv.BLACK_KEY_CONTROL_LIMIT",
             "isv.MOBILE_COUNT_OVER_LIMIT", "isv.SIGN_NAME_ILLEGAL", "InvalidAccessKeyId.NotFound",
             "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch", "IncompleteSignature", "Forbidden.RAM"}


def percent(value: str) -> str:
    """Alibaba Cloud's percent-encoding: RFC 3986, only A-Z a-z 0-9 - _ . ~ left as they are."""
    return urllib.parse.quote(value, safe="-_.~")


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """The Signature of an RPC request (signature version 1.0, HMAC-SHA1), not yet URL-encoded."""
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode("utf-8"), hashlib.sha1).digest()).decode()


def signed_query(params: Mapping[str, str], secret: str) -> str:
    """The query string with the Signature added, as the request sends it."""
    signature = rpc_signature(params, secret)
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in [("Signature", signature), *sorted(params.items())])


def template_param(sms: AliyunSms, facts: Mapping[str, str]) -> dict[str, str]:
    """The template's variables from the message's facts, each cut to what a variable may hold."""
    return {name: " ".join(str(facts.get(what, "")).split())[:PARAM_CHARS] or "-"
            for name, what in sms.template_params.items()}


class AliyunSmsSender:
    """Sends one templated SMS per message through SendSms."""

    def __init__(self, sms: AliyunSms, clock: Clock):
        self.sms = sms
        self.clock = clock
        self.where = f"Alibaba Cloud SMS ({sms.endpoint})"

    def params(self, message: Outgoing, nonce: str | None = None) -> dict[str, str]:
        """Common and SendSms parameters for one message."""
        body = json.loads(message.body)
        return {"AccessKeyId": self.sms.access_key_id.get_secret_value(), "Action": "SendSms", "Format": "JSON",
                "OutId": message.dedup_key[:256], "PhoneNumbers": message.address, "RegionId": self.sms.region_id,
                "SignName": self.sms.sign_name, "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": nonce or uuid.uuid4().hex, "SignatureVersion": "1.0",
                "TemplateCode": self.sms.template_code,
                "TemplateParam": json.dumps(body["template_param"], ensure_ascii=False, separators=(",", ":")),
                "Timestamp": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25"}

    def send(self, message: Outgoing) -> str:
        query = signed_query(self.params(message), self.sms.access_key_secret.get_secret_value())
        status, reply = post_json(f"{self.sms.endpoint}?{query}", None, self.where, self.sms.timeout_seconds,
                                  method="GET")
        code, text = str(reply.get("Code", "")), str(reply.get("Message", ""))[:200]
        if code == "OK":
            log.info("SMS %s sent to %s (BizId %s)", message.id, message.address, reply.get("BizId"))
            return f"Code OK BizId={reply.get('BizId', '')}"
        if code in THROTTLED:
            raise RateLimited(f"{self.where}: {code} ({text})", self.clock.now() + THROTTLED[code])
        raise SendError(f"{self.where}: HTTP {status} Code {code}: {text}", permanent=code in PERMANENT)


class SmsPlugin(ChannelPlugin):
    """channels.yaml sms: people by recipients[].mobile, only for the levels in sms.levels."""

    channel, section, label = Channel.SMS, "sms", "短信"

    def secrets(self, cfg: AppConfig) -> list[str]:
        sms = cfg.channels.sms
        return [sms.access_key_id.get_secret_value(), sms.access_key_secret.get_secret_value()] if sms else []

    def reaches(self, cfg: AppConfig, person: Recipient) -> bool:
        return cfg.channels.sms is not None and bool(person.mobile)

    def envelopes(self, cfg: AppConfig, people: list[Recipient], msg: Rendered) -> list[Envelope]:
        """One SMS per person, for incident messages of the levels SMS is for."""
        sms = cfg.channels.sms
        if sms is None or msg.level not in sms.levels:
            return []
        body = json.dumps({"template_param": template_param(sms, msg.sms)}, ensure_ascii=False)
        return [Envelope(Channel.SMS, p.id, str(p.mobile), msg.subject, body, None, f"sms:{p.id}")
                for p in people if self.reaches(cfg, p)]

    def plain(self, cfg: AppConfig, people: list[Recipient], subject: str, text: str, key: str) -> list[Envelope]:
        """An SMS can only carry its template: a test or fallback fills it with the subject."""
        sms = cfg.channels.sms
        if sms is None:
            return []
        facts = {"level": "测试", "title": subject, "incident": "0", "hospital": cfg.hospital.name}
        body = json.dumps({"template_param": template_param(sms, facts)}, ensure_ascii=False)
        return [Envelope(Channel.SMS, p.id, str(p.mobile), subject, body, None, f"sms:{p.id}")
                for p in people if self.reaches(cfg, p)]

    def sender(self, cfg: AppConfig, clock: Clock) -> AliyunSmsSender:
        assert cfg.channels.sms is not None
        return AliyunSmsSender(cfg.channels.sms, clock)
