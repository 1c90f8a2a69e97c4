"""The gateway process: ingest + live state + series store + InfluxDB export + alerts + advisor + web.

    gw = Gateway(GatewaySettings.from_file("/etc/civiq/gateway.yaml"))
    gw.run_forever()

Data flow: :class:`Ingest` validates and stores what the edges send and calls :meth:`Gateway._on_change`
after each committed batch; that turns node and device state into alert conditions for the
:class:`AlertEngine` and tracks tickets for the public ticket page. A loop thread ticks the alert engine
every second and pings the systemd watchdog; a thread of its own re-runs the load-balancing advisor per
center and, for centers in automatic mode, pushes the advised policy to the edge (retained, so a rebooting
edge gets it).
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

from civiq.clock import Clock, SystemClock, local_day
from civiq.contract import (
    Event,
    EventType,
    PolicyCmd,
    QueueSnapshot,
    Status,
    WorkProfile,
)
from civiq.gateway.adapter import GatewayAdapter
from civiq.gateway.alerts.channels import (
    AlertmanagerChannel,
    Channel,
    EmailChannel,
    MqttChannel,
    TelegramChannel,
    WebhookChannel,
)
from civiq.gateway.alerts.conditions import HEALTH_KINDS, conditions_from_health, node_condition
from civiq.gateway.alerts.engine import AlertEngine
from civiq.gateway.ingest import Applied, Ingest, load_live_state
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.store.influx import InfluxExport
from civiq.gateway.store.series import SeriesStore
from civiq.gateway.tickets import TicketBook
from civiq.sdnotify import Notifier

log = logging.getLogger("civiq.gateway")


def channels_from_settings(settings: GatewaySettings, publish=None) -> list[Channel]:  # noqa: ANN001
    a = settings.alerts
    out: list[Channel] = []
    for url in a.webhooks:
        out.append(WebhookChannel(url))
    if a.telegram_token_file and a.telegram_chat_id:
        token = Path(a.telegram_token_file).read_text().strip()
        out.append(TelegramChannel(token, a.telegram_chat_id, api_base=a.telegram_api_base))
    if a.email_to and a.smtp_host:
        password = Path(a.smtp_password_file).read_text().strip() if a.smtp_password_file else None
        out.append(EmailChannel(a.smtp_host, a.smtp_port, a.email_from, list(a.email_to),
                                username=a.smtp_username, password=password, starttls=a.smtp_starttls))
    if a.alertmanager_url:
        out.append(AlertmanagerChannel(a.alertmanager_url))
    if a.mqtt and publish is not None:
        out.append(MqttChannel(publish))
    return out


def stored_event(e) -> Event | None:  # noqa: ANN001
    """A :class:`~civiq.gateway.store.series.StoredEvent` back as a contract Event (None for a type this
    version does not know). The forecast and the ticket book read Events, not store rows."""
    if isinstance(e, Event):
        return e
    try:
        return Event(seq=e.seq, ts=e.ts, type=EventType(e.type), data=e.data)
    except ValueError:
        return None


class Gateway:
    def __init__(self, settings: GatewaySettings, *, clock: Clock | None = None,
                 channels: list[Channel] | None = None, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = GatewayMetrics()
        self.store = SeriesStore(settings.db_path, settings.retention_days)
        self._ensure_forecast_aggregates()
        self.state = load_live_state(self.store)
        self.influx = None
        if settings.influx is not None:
            i = settings.influx
            self.influx = InfluxExport(i.url, i.token, i.org, i.bucket, settings.spool_path,
                                       batch_size=i.batch_size, flush_interval_s=i.flush_interval_s)
        self.tickets = TicketBook()
        self._restore_tickets()
        self.ingest = Ingest(settings, self.state, self.store, self.influx, clock=self.clock,
                             on_change=self._on_change, metrics=self.metrics)
        if channels is None:
            channels = channels_from_settings(settings, publish=self._publish_alert)
        a = settings.alerts
        self.alerts = AlertEngine(settings.data_dir / "alerts.db", self.clock, channels,
                                  raise_after_s=a.raise_after_s, clear_after_s=a.clear_after_s,
                                  flap_window_s=a.flap_window_s, flap_max=a.flap_max,
                                  grace_s=settings.heartbeat_timeout_s, stale=True)
        self.view = GatewayAdapter(self.state, self.clock, store=self.store, alerts=self.alerts,
                                   tickets=self.tickets, send_command=self.ingest.send_command,
                                   push_policy=self.push_policy)
        self.ratings_drop = None
        if settings.ratings_drop_dir is not None:
            from civiq.gateway.reports.drop import RatingsDrop

            self.ratings_drop = RatingsDrop(self.store, settings.ratings_drop_dir, self.view.names,
                                            state_file=settings.data_dir / "ratings-drop.json",
                                            days=settings.ratings_drop_days)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._advisor: threading.Thread | None = None
        self.advisor_pass_s: float | None = None  # wall time of the last advisor pass
        self._init_loop_metrics()
        self.server = None

    def _init_loop_metrics(self) -> None:
        """What the light loop and the advisor report on /metrics (docs/benchmarks.md, the province bench):
        ``civiq_gw_loop_tick_lag_seconds{stat=p50|p99|max}`` over the last 600 ticks (how late a tick of the
        alert engine finished after it was due: the loop's wake-up delay plus the tick itself),
        ``civiq_gw_advisor_pass_seconds`` (the last pass), ``civiq_gw_advisor_passes_total`` and
        ``civiq_gw_advisor_centers`` (centers advised in the last pass)."""
        r = self.metrics.registry
        self._tick_lags: deque[float] = deque(maxlen=600)

        def lag_stats() -> dict[tuple[str, ...], float]:
            xs = sorted(self._tick_lags)
            if not xs:
                return {}
            return {("p50",): xs[(len(xs) - 1) // 2], ("p99",): xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))],
                    ("max",): xs[-1]}

        r.gauge("loop_tick_lag_seconds", "How late the light loop's alert tick finished after it was due "
                "(last 600 ticks)", ["stat"]).set_function(lag_stats)
        self._m_pass = r.gauge("advisor_pass_seconds", "Wall time of the last advisor pass over every center")
        self._m_passes = r.counter("advisor_passes_total", "Advisor passes completed")
        self._m_advised = r.gauge("advisor_centers", "Centers advised in the last advisor pass")

    def _ensure_forecast_aggregates(self) -> None:
        """A store from before the ingest-time forecast tallies: build them once from its events (about
        10 s per million events; systemd's start timeout is extended meanwhile)."""
        started = time.monotonic()
        n = self.store.ensure_forecast_aggregates(before=lambda: self.notifier.extend_timeout(600))
        if n is not None:
            log.info("forecast aggregates rebuilt from %d stored events in %.1f s", n, time.monotonic() - started)

    def _restore_tickets(self) -> None:
        """Rebuild today's and yesterday's public tickets from the stored events, so the QR codes printed
        before a gateway restart keep working."""
        now = self.clock.now()
        since = self.store.day_bounds(local_day(now - timedelta(days=1)))[0]
        for center in self.state.centers():
            for row in self.store.events_between(center, since, now + timedelta(minutes=5),
                                                 types=[t.value for t in EventType if t.value.startswith("ticket.")]):
                ev = stored_event(row)
                if ev is not None:
                    self.tickets.apply(center, ev)

    # ------------------------------------------------------------------------------------ ingest hook
    def _publish_alert(self, topic: str, payload: bytes):  # noqa: ANN202
        return self.ingest.client.publish(topic, payload, qos=1)

    def _on_change(self, a: Applied) -> None:
        try:
            if a.leaf == "stale":
                self.alerts.set_stale(bool(a.model))
            elif a.leaf == "status" and a.new and isinstance(a.model, Status):
                if a.model.online and a.model.center_name:  # a birth names the center and its services
                    self.state.set_center_name(a.center, a.model.center_name)
                if a.model.online and a.model.services:
                    self.view.service_names[a.center] = {p: s.name_vi for p, s in a.model.services.items()}
                reason = "" if a.model.online else ("clean stop" if a.model.clean else "connection lost (Last Will)")
                self.alerts.evaluate([node_condition(a.center, a.node, a.model.online, reason)])
            elif a.leaf == "heartbeat":
                why = "no heartbeat" if a.model is None else f"silent for {a.model} s (hung, or its link is cut)"
                self.alerts.evaluate([node_condition(a.center, a.node, False, why)])
            elif a.leaf == "alive" and a.new:  # a silent node spoke again on the same connection
                self.alerts.evaluate([node_condition(a.center, a.node, True)])
            elif a.leaf == "health":
                conds = conditions_from_health(a.center, a.node, a.model, self.settings.alerts.thresholds)
                # a node that sends health is alive (it may have come back without a new birth)
                conds.append(node_condition(a.center, a.node, True))
                self.alerts.evaluate(conds)
                self.alerts.resolve_missing(a.center, a.node, {c.key for c in conds}, kinds=HEALTH_KINDS)
            elif a.leaf == "event" and a.new and a.model.type.value.startswith("ticket."):
                self.tickets.apply(a.center, a.model)
            self.view.bump()
        except Exception:  # noqa: BLE001 - never let a bookkeeping error stall ingest
            log.exception("gateway change hook (%s %s/%s)", a.leaf, a.center, a.node)

    # ------------------------------------------------------------------------------------ advisor
    def snapshot_of(self, center: str) -> QueueSnapshot | None:
        c = self.state.center(center, self.clock.now())
        if c is None or not c.get("services") and not c.get("counters"):
            return None
        now = self.clock.now()
        return QueueSnapshot.model_validate({
            "ts": c.get("queue_ts") or now, "day": local_day(now),
            "services": {k: {kk: v.get(kk) for kk in ("waiting", "oldest_wait_s", "eta_s", "served_today",
                                                      "issued_today") if v.get(kk) is not None}
                         for k, v in c["services"].items()},
            "counters": {k: {"state": v["state"], "ticket": v.get("ticket"), "services": v.get("services", []),
                             "served_today": v.get("served_today", 0), "rules": v.get("rules", [])}
                         for k, v in c["counters"].items()},
        })

    def advise(self, center: str):  # noqa: ANN201
        from civiq.gateway.balance.advisor import advise

        snap = self.snapshot_of(center)
        if snap is None or not snap.counters:
            return None
        now = self.clock.now()
        # the tallies kept at ingest (docs/load-balancing.md, "Where the inputs come from"): the last
        # history_days whole local days and today, without reading the events
        stats = self.store.forecast(center, now, self.settings.balance.history_days)
        # the profiles in force with their rules (a push must not erase them), the counters' skills and
        # configured profiles from the births (a service a policy took away can come back)
        profiles = {cid: WorkProfile(services=c.services, rules=c.rules)
                    for cid, c in snap.counters.items() if c.services}
        if not profiles:
            return None
        skills, homes = self.state.balance_config(center)
        known = (set(snap.services) | {s for p in profiles.values() for s in p.services} | set(stats.services)
                 | {s for p in homes.values() for s in p.get("services", [])})
        skills = {k: [s for s in v if s in known] for k, v in skills.items() if k in snap.counters}
        home = {k: WorkProfile.model_validate(p) for k, p in homes.items() if k in snap.counters}
        version = int(now.timestamp())
        return advise(snap, profiles, stats, now, horizon_min=self.settings.balance.horizon_min,
                      skills=skills, home=home, version=version)

    def push_policy(self, center: str, policy) -> list[str]:  # noqa: ANN001
        nodes = [n for c, n in self.state.nodes() if c == center]
        for node in nodes:
            cmd = PolicyCmd(id=self.ingest.new_command_id("policy"), policy=policy)
            self.ingest.send_command(center, node, "policy", cmd, retain=True)
        return nodes

    def _advise_all(self) -> int:
        """One pass over every center; returns how many got advice."""
        advised = 0
        for center in self.state.centers():
            try:
                advice = self.advise(center)
            except Exception:  # noqa: BLE001 - advice is best effort
                log.exception("advisor failed for %s", center)
                continue
            if advice is None:
                continue
            advised += 1
            self.view.set_advice(center, advice)
            if center in self.settings.balance.auto_centers and advice.policy is not None:
                self.push_policy(center, advice.policy)
                log.info("policy v%s pushed to %s automatically", advice.policy.version, center)
        return advised

    # ------------------------------------------------------------------------------------ lifecycle
    def _loop(self) -> None:
        """The light loop: alert timers and the systemd watchdog, every second. Nothing heavy runs here, so
        a slow advisor pass (many centers, long history) can never starve the watchdog."""
        due = time.monotonic() + 1.0
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.alerts.tick()
                days = {local_day(self.clock.now() - timedelta(days=d)) for d in range(2)}
                self.tickets.prune(days)
            except Exception:  # noqa: BLE001
                log.exception("gateway loop")
            self.notifier.watchdog()
            done = time.monotonic()
            self._tick_lags.append(max(0.0, done - due))
            due = due + 1.0 if done < due + 1.0 else done + 1.0  # late by a whole second: do not burst

    def _advisor_loop(self) -> None:
        """The advisor on its own thread: a pass over every center each ``balance.interval_s`` of the
        gateway's clock (the demo's clock runs fast); a pass that overruns delays only the next pass. The daily
        ratings drop (docs/reports.md) is checked here too."""
        next_advice = 0.0
        while not self._stop.wait(0.5):
            now = self.clock.monotonic()
            if self.ratings_drop is not None:  # the daily ratings files (at most once a minute, cheap when nothing changed)
                try:
                    self.ratings_drop.tick(self.clock.now(), now)
                except Exception:  # noqa: BLE001
                    log.exception("ratings drop")
            if now < next_advice:
                continue
            next_advice = now + self.settings.balance.interval_s
            started = time.monotonic()
            advised = 0
            try:
                advised = self._advise_all() or 0
            except Exception:  # noqa: BLE001
                log.exception("advisor pass")
            self.advisor_pass_s = time.monotonic() - started
            self._m_pass.set(self.advisor_pass_s)
            self._m_advised.set(advised)
            self._m_passes.inc()

    def start(self) -> Gateway:
        if self.influx is not None:
            self.influx.start()
        self.ingest.start()
        self._thread = threading.Thread(target=self._loop, name="gateway-loop", daemon=True)
        self._thread.start()
        self._advisor = threading.Thread(target=self._advisor_loop, name="gateway-advisor", daemon=True)
        self._advisor.start()
        self.server = self._start_web()
        self.notifier.ready(f"gateway {self.settings.gateway_id}")
        return self

    def _start_web(self):  # noqa: ANN202
        from civiq.gateway.web.app import create_app
        from civiq.gateway.web.auth import UserStore
        from civiq.webthread import WebThread

        s = self.settings
        secret = load_secret(s.data_dir / "secret.key")
        self.users = UserStore(s.data_dir / "users.db")
        app = create_app(self.view, self.users, secret=secret, public_base_url=s.http.public_base_url)
        from aiohttp import web

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8")

        app.router.add_get("/metrics", metrics)
        return WebThread(app, host=s.http.host, port=s.http.port).start()

    def stop(self) -> None:
        self.notifier.stopping()
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._advisor:
            self._advisor.join(10)
        if self.server:
            self.server.stop()
        self.ingest.stop()
        if self.influx is not None:
            self.influx.stop()
        self.alerts.close()
        self.store.close()
        users = getattr(self, "users", None)
        if users is not None:
            users.close()

    def run_forever(self) -> None:
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: done.set())
        signal.signal(signal.SIGINT, lambda *a: done.set())
        self.start()
        done.wait()
        self.stop()


def load_secret(path: Path) -> bytes:
    """The session/ticket-token secret: created once (0600), kept across restarts so sessions survive."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key.hex())
        tmp.chmod(0o600)
        tmp.replace(path)
        return key
