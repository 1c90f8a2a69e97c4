"""The gateway's alert engine: conditions -> incidents -> one notification each, through durable channels.

See docs/alerts.md for what each alert means to on-call staff, and :mod:`.engine` for the rules.
"""

from civiq.gateway.alerts.channels import (
    AlertmanagerChannel,
    Channel,
    ChannelError,
    EmailChannel,
    MqttChannel,
    TelegramChannel,
    WebhookChannel,
    render_text,
)
from civiq.gateway.alerts.conditions import (
    HEALTH_KINDS,
    KINDS,
    Condition,
    Thresholds,
    condition_key,
    conditions_from_health,
    node_condition,
)
from civiq.gateway.alerts.engine import AlertEngine, AlertError, AlertNotice, AlertView, IncidentView, Silence

__all__ = [
    "HEALTH_KINDS", "KINDS", "AlertEngine", "AlertError", "AlertNotice", "AlertView", "AlertmanagerChannel",
    "Channel", "ChannelError", "Condition", "EmailChannel", "IncidentView", "MqttChannel", "Silence",
    "TelegramChannel", "Thresholds", "WebhookChannel", "condition_key", "conditions_from_health",
    "node_condition", "render_text",
]
