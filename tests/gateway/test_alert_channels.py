"""Alert channels against real receivers: an HTTP webhook, a fake Telegram Bot API (aiohttp), a tiny SMTP
sink, a real Alertmanager (Debian's prometheus-alertmanager) and a real Mosquitto."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from aiohttp import web

from civiq.clock import FakeClock, SystemClock
from civiq.contract import AlertMessage, parse_payload
from civiq.dev.broker import free_port, wait_port
from civiq.gateway.alerts import (
    AlertEngine,
    AlertmanagerChannel,
    AlertNotice,
    ChannelError,
    EmailChannel,
    MqttChannel,
    TelegramChannel,
    WebhookChannel,
    node_condition,
    render_text,
)
from tests.conftest import wait_for

TS = datetime(2026, 1, 5, 1, 30, tzinfo=UTC)  # 08:30 in Ho Chi Minh City


def notice(state: str = "firing", ts: datetime = TS, **kw: object) -> AlertNotice:
    base = dict(key="hcm-q1/pi-1/printer-1/printer_paper_out", center="hcm-q1", node="pi-1", device="printer-1",
                kind="printer_paper_out", severity="critical", state=state,
                summary="Máy in hết giấy / Printer out of paper: hcm-q1/pi-1/printer-1", ts=ts,
                detail="printer is out of paper", notification_id=7)
    base.update(kw)
    return AlertNotice(**base)


# ------------------------------------------------------------------------------------------ webhook
class Hook:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        self.status = status
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append((self.path, dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"nope!" if hook.status >= 400 else b"fine!")

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def test_webhook_posts_json_with_bilingual_text(hook: Hook) -> None:
    WebhookChannel(hook.url, headers={"Authorization": "Bearer s3cret"}, timeout=2).send(notice())
    [(path, headers, body)] = hook.requests
    assert path == "/alerts" and headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"].startswith("application/json")
    assert body["state"] == "firing" and body["device"] == "printer-1" and body["notification_id"] == 7
    assert parse_payload(AlertMessage, json.dumps(body)).kind == "printer_paper_out"
    assert body["text"].splitlines()[:2] == ["🔴 CẢNH BÁO / ALERT",
                                             "Máy in hết giấy / Printer out of paper: hcm-q1/pi-1/printer-1"]
    assert "08:30:00 (Asia/Ho_Chi_Minh)" in body["text"]


def test_webhook_failure_raises_a_readable_error(hook: Hook) -> None:
    hook.status = 500
    with pytest.raises(ChannelError, match="answered 500.*nope!"):
        WebhookChannel(hook.url, timeout=2).send(notice())
    port = free_port()
    with pytest.raises(ChannelError, match="refused"):
        WebhookChannel(f"http://127.0.0.1:{port}/x", timeout=2).send(notice())
    with pytest.raises(ValueError, match="http"):
        WebhookChannel("ftp://example/x")


def test_render_text_headlines() -> None:
    assert render_text(notice("resolved")).startswith("✅ ĐÃ KHẮC PHỤC / RESOLVED\n")
    assert "FLAPPING" in render_text(notice(note="flapping"))
    assert "MAINTENANCE OVER" in render_text(notice(note="after_silence"))
    assert "Acknowledged by: chi" in render_text(notice(note="reminder", acked_by="chi"))
    plain = AlertMessage(**notice().model_dump(include=set(AlertMessage.model_fields)))
    assert render_text(plain).startswith("🔴 CẢNH BÁO / ALERT")


# ------------------------------------------------------------------------------------------ telegram
async def test_telegram_send_message_against_a_fake_bot_api() -> None:
    got: list[tuple[str, dict]] = []
    refuse = {"on": False}

    async def send_message(request: web.Request) -> web.Response:
        body = await request.json()
        got.append((request.match_info["token"], body))
        if refuse["on"]:
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests",
                                      "parameters": {"retry_after": 17}}, status=429)
        return web.json_response({"ok": True, "result": {"message_id": len(got), "chat": {"id": body["chat_id"]}}})

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send_message)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        ch = TelegramChannel("123:ABC", chat_id=-1001, api_base=f"http://127.0.0.1:{port}", timeout=2)
        await asyncio.to_thread(ch.send, notice())
        [(token, body)] = got
        assert token == "123:ABC" and body["chat_id"] == -1001
        assert "Máy in hết giấy / Printer out of paper" in body["text"]
        assert "Mức độ / Severity: nghiêm trọng / critical" in body["text"]

        refuse["on"] = True
        with pytest.raises(ChannelError) as err:
            await asyncio.to_thread(ch.send, notice("resolved"))
        assert err.value.retry_after == 17 and "123:ABC" not in str(err.value)
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------------------------------ e-mail
class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib: greets, says yes, keeps each message."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpSink

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        sender, rcpts = "", []
        while line := self.rfile.readline():
            cmd = line.decode().strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-sink\r\n250 8BITMIME" if verb == "EHLO" else "250 sink")
            elif verb == "MAIL":
                sender = cmd.split(":", 1)[1].strip().split()[0].strip("<>")
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append((sender, rcpts, data))
                sender, rcpts = "", []
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


def test_email_reaches_an_smtp_server() -> None:
    sink = SmtpSink()
    try:
        ch = EmailChannel("127.0.0.1", sink.server_address[1], sender="civiq@tinh.gov.vn",
                          to=["oncall@tinh.gov.vn", "kythuat@tinh.gov.vn"], timeout=5)
        ch.send(notice("resolved"))
        [(sender, rcpts, data)] = sink.messages
        assert sender == "civiq@tinh.gov.vn" and rcpts == ["oncall@tinh.gov.vn", "kythuat@tinh.gov.vn"]
        msg: EmailMessage = email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[assignment]
        assert msg["Subject"].startswith("[civiq] ✅ ĐÃ KHẮC PHỤC / RESOLVED: Máy in hết giấy")
        assert "Chi tiết / Detail: printer is out of paper" in msg.get_content()
    finally:
        sink.shutdown()
        sink.server_close()
    with pytest.raises(ChannelError, match="e-mail via 127.0.0.1"):
        ch.send(notice())


# ------------------------------------------------------------------------------------------ alertmanager
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if not ALERTMANAGER:
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    conf = tmp_path / "am.yml"
    conf.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={conf}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port("127.0.0.1", port, 15)

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=15, what="alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _am_alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as r:
        return json.loads(r.read())


def test_alertmanager_receives_and_resolves_a_real_alert(alertmanager: str) -> None:
    ch = AlertmanagerChannel(alertmanager, timeout=5)
    now = SystemClock().now()  # Alertmanager judges endsAt against its own (real) clock
    ch.send(notice("firing", ts=now))
    [a] = wait_for(lambda: _am_alerts(alertmanager), what="the alert in Alertmanager")
    assert a["labels"] == {"alertname": "printer_paper_out", "center": "hcm-q1", "node": "pi-1",
                           "device": "printer-1", "severity": "critical"}
    assert a["annotations"]["summary"] == "Máy in hết giấy / Printer out of paper: hcm-q1/pi-1/printer-1"
    assert a["status"]["state"] == "active"
    assert datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")).timestamp() > time.time() + 86400

    ch.send(notice("resolved", ts=SystemClock().now()))
    wait_for(lambda: _am_alerts(alertmanager) == [], what="the alert to be resolved in Alertmanager")


def test_alertmanager_down_raises(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="refused"):
        AlertmanagerChannel(f"http://127.0.0.1:{free_port()}", timeout=2).send(notice())


# ------------------------------------------------------------------------------------------ mqtt
def test_mqtt_channel_publishes_on_the_alert_topic(broker, recorder) -> None:
    rec = recorder("civiq/v1/alerts/#")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-alerts")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        ch = MqttChannel(lambda t, p: client.publish(t, p, qos=1))
        ch.send(notice())
        [payload] = wait_for(lambda: rec.on("alerts/hcm-q1"), what="the alert on MQTT")
        msg = parse_payload(AlertMessage, payload)
        assert (msg.key, msg.state, msg.severity) == ("hcm-q1/pi-1/printer-1/printer_paper_out", "firing",
                                                      "critical")
        assert json.loads(payload)["note"] == ""
    finally:
        client.loop_stop()
        client.disconnect()
    with pytest.raises(ChannelError, match="rc=4"):
        MqttChannel(lambda t, p: client.publish(t, p, qos=1)).send(notice())

    def broken(t: str, p: bytes) -> None:
        raise OSError("socket closed")

    with pytest.raises(ChannelError, match="socket closed"):
        MqttChannel(broken).send(notice())


def test_engine_fans_out_to_several_real_channels(tmp_path: Path, hook: Hook, broker, recorder) -> None:
    """One incident through the engine reaches a webhook and MQTT exactly once each."""
    rec = recorder("civiq/v1/alerts/#")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-alerts-2")
    client.connect(broker.host, broker.port)
    client.loop_start()
    clock = FakeClock()
    engine = AlertEngine(tmp_path / "a.db", clock,
                         [WebhookChannel(hook.url, timeout=2), MqttChannel(lambda t, p: client.publish(t, p, qos=1))])
    try:
        for _ in range(10):
            clock.advance(1)
            engine.evaluate([node_condition("hcm-q1", "pi-3", online=False, reason="last will")])
            engine.tick()
        wait_for(lambda: engine.pending_deliveries() == 0 and hook.requests and rec.on("alerts/hcm-q1"),
                 what="both deliveries")
        assert len(hook.requests) == 1 and len(rec.on("alerts/hcm-q1")) == 1
        assert hook.requests[0][2]["notification_id"] == json.loads(rec.on("alerts/hcm-q1")[0])["notification_id"]
    finally:
        engine.close()
        client.loop_stop()
        client.disconnect()
