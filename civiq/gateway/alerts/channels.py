"""Where alert notifications go: webhook, Telegram, e-mail, Alertmanager, MQTT.

Every channel has one method, ``send(msg)``, that delivers one :class:`~civiq.contract.AlertMessage` or
raises (:class:`ChannelError` with a readable reason). Channels do not retry: the engine's outbox does that
(see :mod:`civiq.gateway.alerts.engine`), so a channel that is down never blocks the others and never loses
a message. Text is written in Vietnamese and English.

>>> from datetime import UTC, datetime
>>> from civiq.contract import AlertMessage
>>> m = AlertMessage(key="hcm-q1/pi-1/node_offline", center="hcm-q1", node="pi-1", kind="node_offline",
...                  severity="critical", state="resolved", summary="Mất kết nối máy trạm / Edge node offline: hcm-q1/pi-1",
...                  ts=datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
>>> print(render_text(m).splitlines()[0])
✅ ĐÃ KHẮC PHỤC / RESOLVED
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from civiq.clock import DEFAULT_TZ
from civiq.contract import AlertMessage, alert_topic
from civiq.errors import GatewayError


class ChannelError(GatewayError, RuntimeError):
    """A delivery failed. ``retry_after`` (seconds) is set when the receiver asked us to wait."""

    def __init__(self, message: str, retry_after: float | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.body = body  # the receiver's answer to a refused request, if any


@runtime_checkable
class Channel(Protocol):
    """Delivers one alert message or raises. ``name`` identifies it in the outbox (stable across restarts)."""

    name: str

    def send(self, msg: AlertMessage) -> None: ...


# ------------------------------------------------------------------------------------------ rendering
_HEADERS = {
    ("firing", ""): "🔴 CẢNH BÁO / ALERT",
    ("resolved", ""): "✅ ĐÃ KHẮC PHỤC / RESOLVED",
    ("firing", "flapping"): "⚠️ CHẬP CHỜN, TẠM NGỪNG BÁO / FLAPPING, NOTIFICATIONS PAUSED",
    ("firing", "stable"): "🔴 ĐÃ ỔN ĐỊNH: VẪN LỖI / STABLE AGAIN: STILL FIRING",
    ("resolved", "stable"): "✅ ĐÃ ỔN ĐỊNH: ĐÃ KHẮC PHỤC / STABLE AGAIN: RESOLVED",
    ("firing", "reminder"): "🔁 NHẮC LẠI: VẪN LỖI / REMINDER: STILL FIRING",
    ("firing", "after_silence"): "🔧 HẾT BẢO TRÌ, VẪN LỖI / MAINTENANCE OVER, STILL FIRING",
}
_SEVERITY = {"critical": "nghiêm trọng / critical", "warning": "cần chú ý / warning", "info": "thông tin / info"}


def note_of(msg: AlertMessage) -> str:
    """The engine's note (``flapping``, ``stable``, ``reminder``, ``after_silence``) or ``""``."""
    return str(getattr(msg, "note", "") or "")


def headline(msg: AlertMessage) -> str:
    return _HEADERS.get((msg.state, note_of(msg))) or _HEADERS[(msg.state, "")]


def render_text(msg: AlertMessage, tz: str = DEFAULT_TZ) -> str:
    """A short bilingual text for chat and e-mail."""
    local = msg.ts.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
    lines = [headline(msg), msg.summary, f"Mức độ / Severity: {_SEVERITY.get(msg.severity, msg.severity)}"]
    detail = getattr(msg, "detail", "")
    if detail:
        lines.append(f"Chi tiết / Detail: {detail}")
    lines.append(f"Lúc / At: {local} ({tz})")
    acked = getattr(msg, "acked_by", None)
    if acked:
        lines.append(f"Đã nhận xử lý / Acknowledged by: {acked}")
    lines.append(f"Mã / Key: {msg.key}")
    return "\n".join(lines)


def payload_of(msg: AlertMessage) -> dict[str, Any]:
    return msg.model_dump(mode="json")


# ------------------------------------------------------------------------------------------ HTTP helper
def _post_json(url: str, body: Any, headers: dict[str, str] | None, timeout: float) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
            return resp.read()
    except urllib.error.HTTPError as e:
        body = e.read()[:4096]
        text = body[:300].decode("utf-8", "replace")
        retry = e.headers.get("Retry-After") if e.headers else None
        raise ChannelError(f"POST {url} answered {e.code} {e.reason}: {text}",
                           retry_after=_float_or_none(retry), body=body) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ChannelError(f"POST {url} failed: {reason}") from None


def _float_or_none(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ channels
class WebhookChannel:
    """POST the message as JSON (the AlertMessage fields plus ``text``, the rendered bilingual text)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 10.0,
                 name: str = "webhook") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        self.url, self.headers, self.timeout, self.name = url, headers or {}, timeout, name

    def send(self, msg: AlertMessage) -> None:
        _post_json(self.url, {**payload_of(msg), "text": render_text(msg)}, self.headers, self.timeout)


class TelegramChannel:
    """Bot API ``sendMessage`` to one chat. ``api_base`` points at a test server in tests."""

    def __init__(self, token: str, chat_id: str | int, api_base: str = "https://api.telegram.org",
                 timeout: float = 10.0, name: str = "telegram") -> None:
        if not token:
            raise ValueError("telegram token is empty")
        self.token, self.chat_id, self.api_base = token, chat_id, api_base.rstrip("/")
        self.timeout, self.name = timeout, name

    def send(self, msg: AlertMessage) -> None:
        url = f"{self.api_base}/bot{self.token}/sendMessage"
        body = {"chat_id": self.chat_id, "text": render_text(msg), "disable_web_page_preview": True}
        failed: ChannelError | None = None
        try:
            raw = _post_json(url, body, None, self.timeout)
        except ChannelError as e:  # the Bot API explains refusals (429 retry_after...) in a JSON body
            raw, failed = e.body, e
        try:
            answer = json.loads(raw)
        except ValueError:
            if failed is not None:  # hide the token from logs
                raise ChannelError(str(failed).replace(self.token, "<token>"), failed.retry_after) from None
            raise ChannelError("telegram answered something that is not JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            answer = answer if isinstance(answer, dict) else {"description": answer}
            retry = (answer.get("parameters") or {}).get("retry_after")
            raise ChannelError(f"telegram refused the message: {answer.get('description', answer)}",
                               retry_after=_float_or_none(retry))


class EmailChannel:
    """One e-mail per notification through an SMTP server (smtplib)."""

    def __init__(self, host: str, port: int, sender: str, to: list[str] | str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 15.0,
                 name: str = "email") -> None:
        self.to = [to] if isinstance(to, str) else list(to)
        if not self.to:
            raise ValueError("email channel needs at least one recipient")
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls
        self.timeout, self.name = timeout, name

    def build(self, msg: AlertMessage) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = f"[civiq] {headline(msg)}: {msg.summary}"
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m.set_content(render_text(msg))
        return m

    def send(self, msg: AlertMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as s:
                if self.starttls:
                    s.starttls(context=ssl.create_default_context())
                if self.username:
                    s.login(self.username, self.password or "")
                s.send_message(self.build(msg))
        except (smtplib.SMTPException, OSError) as e:
            raise ChannelError(f"e-mail via {self.host}:{self.port} failed: {e}") from None


class AlertmanagerChannel:
    """POST to Alertmanager's ``/api/v2/alerts``.

    Alertmanager expects firing alerts to be re-sent, and resolves one by itself when its ``endsAt`` passes.
    We notify once, so a firing alert carries ``endsAt = ts + hold_s`` (7 days by default; reminders from
    ``renotify_s`` refresh it). A resolution carries ``endsAt`` = the time it resolved.
    """

    def __init__(self, url: str, timeout: float = 10.0, hold_s: float = 7 * 86400,
                 name: str = "alertmanager") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alertmanager url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        if not self.url.endswith("/api/v2/alerts"):
            self.url += "/api/v2/alerts"
        self.timeout, self.hold_s, self.name = timeout, hold_s, name

    @staticmethod
    def _iso(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    def alert_of(self, msg: AlertMessage) -> dict[str, Any]:
        labels = {"alertname": msg.kind, "center": msg.center, "node": msg.node, "severity": msg.severity}
        if msg.device:
            labels["device"] = msg.device
        started = getattr(msg, "started_at", None) or msg.ts
        if msg.state == "firing":
            ends = msg.ts + timedelta(seconds=self.hold_s)
        else:
            ends, started = msg.ts, min(started, msg.ts)
        annotations = {"summary": msg.summary, "key": msg.key}
        if getattr(msg, "detail", ""):
            annotations["description"] = msg.detail  # type: ignore[attr-defined]
        return {"labels": labels, "annotations": annotations,
                "startsAt": self._iso(started), "endsAt": self._iso(ends)}

    def send(self, msg: AlertMessage) -> None:
        _post_json(self.url, [self.alert_of(msg)], None, self.timeout)


class MqttChannel:
    """Publish on ``civiq/v1/alerts/<center>`` through ``publish_fn(topic, payload)``.

    ``publish_fn`` is typically ``lambda t, p: client.publish(t, p, qos=1)`` of a paho client; a result
    with a non-zero ``rc`` (not connected, queue full) counts as a failure and is retried by the outbox.
    """

    def __init__(self, publish_fn: Callable[[str, bytes], Any], name: str = "mqtt") -> None:
        self.publish_fn, self.name = publish_fn, name

    def send(self, msg: AlertMessage) -> None:
        try:
            result = self.publish_fn(alert_topic(msg.center), msg.to_json())
        except Exception as e:  # noqa: BLE001 - whatever the client raises is a failed delivery
            raise ChannelError(f"MQTT publish failed: {e}") from None
        rc = getattr(result, "rc", 0)
        if rc:
            raise ChannelError(f"MQTT publish failed with rc={rc}")
