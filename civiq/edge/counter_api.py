"""The agent's local counter API (loopback only for anything that acts; see docs/technician.md).

For a clerk's PC application, a reception desk tool or a technician's ``curl`` on the Pi itself::

    POST /api/counters/{counter}/{action}   body (optional JSON): {"ticket": "B012", "to_service": ..., "to_counter": ...}
         actions: next, recall, no_show, complete, open, close, break, transfer,
                  call (a specific ticket, out of order), hold, call_held (ticket, or the oldest held here),
                  sign_in ({"clerk": "lan"} or {"code": "4821"}: the clerk's keypad code), sign_out;
                  complete / done take {"dossier": "H29.22-241205-0001"} (the one-stop dossier code)
    GET  /api/clerks                        who is signed in where: {counter: {clerk, name}}
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
from civiq.edge.webbase import json_response

BODY_KEYS = ("ticket", "to_service", "to_counter", "clerk", "code", "dossier")
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
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str | None) for k in BODY_KEYS):
            return json_response({"ok": False, "error": "body must be an object of strings: "
                                  + ", ".join(BODY_KEYS)}, 400)
        try:
            if name == "sign_in" and body.get("code") is not None and body.get("clerk") is None:
                result = await asyncio.to_thread(agent.sign_in_code, counter, body["code"], "api")
            else:
                result = await asyncio.to_thread(agent.counter_action, counter, name, body.get("to_service"),
                                                 body.get("to_counter"), ticket=body.get("ticket"), by="api",
                                                 clerk=body.get("clerk"), dossier=body.get("dossier"))
        except RecallCooldown as e:
            return json_response({"ok": False, "error": str(e), "retry_after_s": round(e.left_s, 1)}, 409)
        except (QueueError, StoreFull) as e:
            return json_response({"ok": False, "error": str(e)}, 409)
        ticket = getattr(result, "ticket", result)  # a RecallResult holds its ticket
        out: dict[str, Any] = {"ok": True, "counter": counter, "action": name}
        if hasattr(ticket, "label"):
            out["ticket"] = _ticket_json(ticket)
        if name in ("sign_in", "sign_out"):
            out["clerk"] = getattr(result, "clerk", None)
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

    async def clerks(request: web.Request) -> web.Response:
        names = {cid: c.name for cid, c in agent.cfg.clerks.items()}
        return json_response({counter: {"clerk": clerk, "name": names.get(clerk)}
                              for counter, clerk in agent.engine.signed_in().items()})

    return [web.post("/api/counters/{counter}/{action}", action), web.post("/api/issue/{service}", issue),
            web.get("/api/held", held), web.get("/api/clerks", clerks)]
