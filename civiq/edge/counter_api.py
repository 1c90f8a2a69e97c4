"""The agent's local counter API (loopback only for anything that acts; see docs/technician.md).

For a clerk's PC application, a reception desk tool or a technician's ``curl`` on the Pi itself::

    POST /api/counters/{counter}/{action}   body (optional JSON): {"ticket": "B012", "to_service": ..., "to_counter": ...}
         actions: next, recall, no_show, complete, open, close, break, transfer,
                  call (a specific ticket, out of order), hold, call_held (ticket, or the oldest held here)
    POST /api/issue/{service}?priority=<class id>   issue a ticket (printed like a dispenser press)
    GET  /api/held                          held tickets: [{ticket, service, counter, priority}]

Every action is written with ``by: "api"`` in its event (audit). A refusal is HTTP 409 with the reason in
words (``{"ok": false, "error": ...}``); a recall inside the cooldown also gives ``retry_after_s``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from civiq.contract import CounterCmd
from civiq.edge.queue.engine import QueueError, RecallCooldown
from civiq.edge.queue.store import StoreFull
from civiq.edge.web import json_response

ACTIONS = (*CounterCmd.model_fields["action"].annotation.__args__, "done")  # type: ignore[union-attr]


def _ticket_json(t: Any) -> dict[str, Any]:
    return {"ticket": t.label, "service": t.service, "status": str(t.status), "counter": t.counter,
            "priority": t.priority}


def counter_routes(agent: Any) -> list[web.RouteDef]:
    async def action(request: web.Request) -> web.Response:
        counter, name = request.match_info["counter"], request.match_info["action"]
        if name not in ACTIONS:
            return json_response({"ok": False, "error": f"unknown action {name!r}; one of {', '.join(ACTIONS)}"},
                                 404)
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as e:
            return json_response({"ok": False, "error": f"body is not JSON: {e}"}, 400)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str | None)
                                                 for k in ("ticket", "to_service", "to_counter")):
            return json_response({"ok": False, "error": "body must be an object of strings: ticket, to_service, "
                                  "to_counter"}, 400)
        try:
            result = await asyncio.to_thread(agent.counter_action, counter, name, body.get("to_service"),
                                             body.get("to_counter"), ticket=body.get("ticket"), by="api")
        except RecallCooldown as e:
            return json_response({"ok": False, "error": str(e), "retry_after_s": round(e.left_s, 1)}, 409)
        except (QueueError, StoreFull) as e:
            return json_response({"ok": False, "error": str(e)}, 409)
        ticket = getattr(result, "ticket", result)  # a RecallResult holds its ticket
        out: dict[str, Any] = {"ok": True, "counter": counter, "action": name}
        if hasattr(ticket, "label"):
            out["ticket"] = _ticket_json(ticket)
        return json_response(out)

    async def issue(request: web.Request) -> web.Response:
        service, priority = request.match_info["service"], request.query.get("priority") or None
        before = agent.engine.last_seq
        await asyncio.to_thread(agent.on_dispenser_press, service, priority, "api")
        if agent.engine.last_seq == before:
            return json_response({"ok": False, "error": "no ticket issued (unknown service or priority class, "
                                  "printer down or disk full: see the agent's log)"}, 409)
        return json_response({"ok": True})

    async def held(request: web.Request) -> web.Response:
        return json_response([_ticket_json(t) for t in agent.engine.held()])

    return [web.post("/api/counters/{counter}/{action}", action), web.post("/api/issue/{service}", issue),
            web.get("/api/held", held)]
