"""The simulator's local control API (documented in docs/simulator.md).

    POST /sim/press/{service}               press the dispenser button of a service
         ?priority=<class id>               ... after that class's priority button (a priority ticket)
    POST /sim/key/{keypad}/{action}         press a keypad key (next, recall, no_show, transfer, done, hold,
                                            call_held, ...; issue:A:elderly for a reception issue key)
         ?ticket=B012                       a call pad: type the number first (call, call_held)
         ?code=4821                         a call pad: type a clerk's code first (sign_in)
    POST /sim/rate/{pad}?score=4            a citizen rates on rating pad/page {pad} (score key, then
         &reasons=wait,guidance             the reason keys; a page: face, reasons, "Gửi")
    GET  /sim/ratingpads                    the lamps of every RS-485 rating pad ('0' dark ... '3' thanks)
    GET  /sim/printers/{id}/tickets         what the printer printed: text lines, QR data, image sizes
    GET  /sim/printers/{id}/tickets/{n}.png the n-th printed ticket's raster image(s), stacked
    GET  /sim/displays                      what every counter display shows
    POST /sim/devices/{id}/unplug           pull the device's cable
    POST /sim/devices/{id}/plug             plug it back
    POST /sim/devices/{id}/mute?on=1        the device stops answering (a shorted bus)
    POST /sim/printers/{id}/status          JSON {paper_out, paper_near_end, cover_open, offline}
    GET  /sim/speaker                       what the hall speaker said: text, clips, duration, WAV link
    GET  /sim/speaker/{n}.wav               the n-th announcement heard, as a WAV file
    POST /sim/speaker/fault?on=1            the sound card fails (aplay errors) / heals with on=0
"""

from __future__ import annotations

import asyncio
import io
import json

from aiohttp import web

from civiq.edge.sim.hardware import SimHardware
from civiq.edge.webbase import json_response


def _ticket_json(n: int, t: object) -> dict:
    return {"n": n, "text": list(getattr(t, "text", [])), "qr": list(getattr(t, "qr", [])),
            "images": [list(img.size) for img in getattr(t, "images", [])]}


def sim_routes(sim: SimHardware) -> list[web.RouteDef]:
    def guard(fn):  # noqa: ANN001, ANN202
        async def handler(request: web.Request) -> web.Response:
            try:
                return await fn(request)
            except KeyError as e:
                return json_response({"ok": False, "error": str(e).strip("'\"")}, 404)
            except ValueError as e:
                return json_response({"ok": False, "error": str(e)}, 400)

        return handler

    @guard
    async def press(request: web.Request) -> web.Response:
        sim.press_button(request.match_info["service"], request.query.get("priority") or None)
        return json_response({"ok": True})

    @guard
    async def key(request: web.Request) -> web.Response:
        typed = request.query.get("ticket") or request.query.get("code") or None  # a ticket, or a clerk's code
        sim.press_key(request.match_info["keypad"], request.match_info["action"], typed)
        return json_response({"ok": True})

    @guard
    async def rate(request: web.Request) -> web.Response:
        raw = request.query.get("score", "")
        if not raw.isdigit():
            raise ValueError(f"score must be a whole number (e.g. ?score=4), not {raw!r}")
        reasons = [r for r in request.query.get("reasons", "").split(",") if r]
        await asyncio.to_thread(sim.rate, request.match_info["pad"], int(raw), reasons)
        return json_response({"ok": True})

    @guard
    async def ratingpads(request: web.Request) -> web.Response:
        return json_response({r.id: {"lamp": sim.rating_pad(r.id).lamp, "waiting": len(sim.rating_pad(r.id).waiting)}
                              for r in sim.cfg.ratingpads if r.kind == "serial"})

    @guard
    async def tickets(request: web.Request) -> web.Response:
        return json_response([_ticket_json(i, t) for i, t in enumerate(sim.printed(request.match_info["id"]))])

    @guard
    async def ticket_png(request: web.Request) -> web.Response:

        items = sim.printed(request.match_info["id"])
        t = items[int(request.match_info["n"])] if items else None
        img = t.page() if t is not None else None  # pictures, text and QR in paper order
        if img is None:
            raise KeyError("no image for that ticket")
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return web.Response(body=buf.getvalue(), content_type="image/png")

    @guard
    async def displays(request: web.Request) -> web.Response:
        return json_response(sim.displays())

    @guard
    async def unplug(request: web.Request) -> web.Response:
        sim.unplug(request.match_info["id"])
        return json_response({"ok": True})

    @guard
    async def plug(request: web.Request) -> web.Response:
        sim.plug(request.match_info["id"])
        return json_response({"ok": True})

    @guard
    async def mute(request: web.Request) -> web.Response:
        sim.mute(request.match_info["id"], request.query.get("on", "1") not in ("0", "false"))
        return json_response({"ok": True})

    @guard
    async def printer_status(request: web.Request) -> web.Response:
        try:
            flags = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"body is not JSON: {e}") from None
        if not isinstance(flags, dict):
            raise ValueError("body must be a JSON object")
        sim.set_printer(request.match_info["id"], **flags)
        return json_response({"ok": True})

    @guard
    async def speaker(request: web.Request) -> web.Response:
        return json_response([dict(h.json(), n=i) for i, h in enumerate(sim.speaker.heard)])

    @guard
    async def speaker_wav(request: web.Request) -> web.Response:
        heard = sim.speaker.heard
        n = int(request.match_info["n"])
        if n >= len(heard):
            raise KeyError(f"the speaker said {len(heard)} announcements")
        return web.Response(body=heard[n].wav, content_type="audio/wav")

    @guard
    async def speaker_fault(request: web.Request) -> web.Response:
        on = request.query.get("on", "1") not in ("0", "false")
        sim.speaker.fault = "ALSA device 'default' cannot play: simulated sound card fault" if on else None
        return json_response({"ok": True})

    return [
        web.get("/sim/speaker", speaker),
        web.get(r"/sim/speaker/{n:\d+}.wav", speaker_wav),
        web.post("/sim/speaker/fault", speaker_fault),
        web.post("/sim/press/{service}", press),
        web.post("/sim/key/{keypad}/{action}", key),
        web.post("/sim/rate/{pad}", rate),
        web.get("/sim/ratingpads", ratingpads),
        web.get("/sim/printers/{id}/tickets", tickets),
        web.get(r"/sim/printers/{id}/tickets/{n:\d+}.png", ticket_png),
        web.get("/sim/displays", displays),
        web.post("/sim/devices/{id}/unplug", unplug),
        web.post("/sim/devices/{id}/plug", plug),
        web.post("/sim/devices/{id}/mute", mute),
        web.post("/sim/printers/{id}/status", printer_status),
    ]
