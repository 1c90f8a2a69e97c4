"""The touch kiosk's issue call: ``POST /api/kiosk/issue`` with ``{"service": "A", "priority": null}``.

It goes through THE path of the dispenser's buttons (``EdgeAgent.on_dispenser_press``), so a kiosk ticket is
printed, numbered and refused (printer out, disk full) exactly like a button's. Double taps: the page locks
its buttons while a ticket is shown, and this handler refuses a second press from the same screen within
``MIN_GAP_S`` (a finger bouncing on the glass is one press).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

MIN_GAP_S = 1.0


def _json(data: dict, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), status=status,
                        content_type="application/json")


def kiosk_issue_handler(agent: Any, printer_status: Callable[[], tuple[bool, str]] | None = None):  # noqa: ANN201
    """The kiosk's ``POST /api/kiosk/issue`` handler; ``printer_status`` says why no ticket came out (the hall
    feed's own check, :meth:`civiq.edge.ticket_desk.TicketDesk.printer_status`)."""
    last: dict[str, float] = {}
    lock = threading.Lock()

    async def issue(request: web.Request) -> web.Response:
        hall = getattr(agent.cfg, "hall", None)
        if hall is not None and not hall.kiosk:
            return _json({"ok": False, "error": "kiosk disabled (hall.kiosk: false)"}, 404)
        try:
            body = await request.json()
            service = str(body["service"])
            priority = body.get("priority") or None
        except (ValueError, KeyError, TypeError, AttributeError):
            return _json({"ok": False, "error": 'expected {"service": "A", "priority": null}'}, 400)
        if service not in agent.services:
            return _json({"ok": False, "error": f"unknown service {service!r}"}, 404)
        if priority is not None and priority not in agent.cfg.priority.enabled():
            return _json({"ok": False, "error": f"unknown or disabled priority class {priority!r}"}, 404)
        who = request.remote or "?"
        now = time.monotonic()
        with lock:
            if now - last.get(who, -1e9) < MIN_GAP_S:
                return _json({"ok": False, "error": "double tap ignored", "reason": "double_tap"}, 429)
            last[who] = now
        ticket = await asyncio.to_thread(agent.on_dispenser_press, service, priority, "kiosk")
        if ticket is None:
            with lock:
                last.pop(who, None)  # nothing issued: the next tap is a new try
            ok, detail = printer_status() if printer_status else (True, "")
            reason = "printer" if not ok else "error"
            return _json({"ok": False, "reason": reason, "error": detail or "no ticket issued"}, 503)
        svc = agent.services[service]
        cls = agent.cfg.priority.enabled().get(priority) if priority else None
        return _json({"ok": True, "ticket": ticket.label, "service": service, "service_vi": svc.name_vi,
                      "service_en": svc.name_en, "ahead": ticket.ahead, "eta_s": ticket.eta_s,
                      "priority": priority, "priority_vi": cls.name_vi if cls else None})

    issue.allow_from = tuple(getattr(getattr(agent.cfg, "hall", None), "kiosk_allow", ()) or ())
    return issue
