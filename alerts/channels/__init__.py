"""Channels as plugins: the one table every channel is registered in.

Adding a channel: a module here with a ChannelPlugin subclass (config section, rendering limits,
sender, secrets, how its error codes map to retry-later or permanent), a line in REGISTRY, its
config model in yuqing/channel_config.py and its name in yuqing.vocabulary.Channel.
"""

from __future__ import annotations

from yuqing.alerts.channels.base import ChannelPlugin
from yuqing.alerts.channels.dingtalk import DingTalkPlugin
from yuqing.alerts.channels.email import EmailPlugin
from yuqing.alerts.channels.sms import SmsPlugin
from yuqing.alerts.channels.webhook import WebhookPlugin
from yuqing.alerts.channels.wecom import WeComRobotPlugin
from yuqing.alerts.channels.wecom_app import WeComAppPlugin
from yuqing.vocabulary import Channel

REGISTRY: dict[Channel, ChannelPlugin] = {plugin.channel: plugin for plugin in (
    EmailPlugin(), WeComRobotPlugin(), WeComAppPlugin(), DingTalkPlugin(), SmsPlugin(), WebhookPlugin())}
