"""``civiq edge ...``: run, doctor, test-print, display-test, say-test, voice-pack, install."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from pathlib import Path

from civiq.edge.config import CenterConfig, ConfigError, load_config
from civiq.edge.runfile import RUNFILE
from civiq.edge.runfile import ask_running_agent as _ask_running_agent

log = logging.getLogger("civiq.edge")



def _load(path: str) -> CenterConfig | None:
    try:
        return load_config(path)
    except ConfigError as e:
        print(f"The config is not valid; the agent will not start until it is fixed:\n{e}", file=sys.stderr)
        return None
    except OSError as e:
        print(f"cannot read config {path}: {e.strerror}", file=sys.stderr)
        return None


def make_agent(cfg: CenterConfig, simulate: bool, **kw):  # noqa: ANN201
    """An agent on real hardware, or on a fresh simulation (returned as ``agent.sim``)."""
    from civiq.edge.agent import EdgeAgent

    if simulate:
        from civiq.edge.sim.hardware import SimHardware, sim_dir_for

        sim = SimHardware(cfg, sim_dir_for(cfg, kw.get("state_dir"))).start()
        agent = EdgeAgent(cfg, pin_factory=sim.pin_factory, resolve_port=sim.resolve_port,
                          speaker_output=sim.speaker, **kw)
        agent.sim = sim
        if agent.rating is not None:
            from civiq.edge.rating_web import page_tap

            sim.page_rate = page_tap(agent)
        return agent
    from civiq.edge.hardware import NO_PIN_LIBRARY_HINT, pin_libraries

    with pin_libraries() as pins:  # gpiozero's fallbacks in one line (a log line, or the error), not warnings
        try:
            agent = EdgeAgent(cfg, pin_factory=None, **kw)
        except ValueError as e:
            if pins.none_loaded(e):
                raise ValueError(f"no GPIO pin library could load ({pins.text() or e}): {NO_PIN_LIBRARY_HINT}") \
                    from None
            raise
    if pins.tried:
        log.warning("GPIO: %s in use; could not load %s", pins.in_use(), pins.text())
    return agent


def _open(cfg: CenterConfig, simulate: bool, what: str):  # noqa: ANN202 - EdgeAgent | None
    """The agent on this machine's hardware for a one-off test; None (and why, in one line) when it cannot open."""
    try:
        return make_agent(cfg, simulate)
    except (ConfigError, ValueError, OSError) as e:
        print(f"{what}: the hardware cannot be opened: {e}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    from civiq.edge.web import agent_app, agent_routes
    from civiq.webthread import WebThread

    try:
        agent = make_agent(cfg, args.simulate)
    except (ConfigError, ValueError, OSError) as e:
        print(f"The agent cannot start: {e}", file=sys.stderr)
        return 2
    routes = agent_routes(agent)
    if args.simulate:
        from civiq.edge.sim.api import sim_routes

        routes += sim_routes(agent.sim)
    port = args.api_port if args.api_port is not None else cfg.http.port
    try:
        server = WebThread(agent_app(routes), host=cfg.http.host, port=port).start()
    except OSError as e:
        if getattr(agent, "sim", None):
            agent.sim.stop()
        if e.errno == errno.EADDRINUSE:
            print(f"The agent cannot start: port {port} on {cfg.http.host} is already in use (another agent or "
                  f"the demo?): choose a free one with --api-port N, or http.port in {args.config}",
                  file=sys.stderr)
        else:
            print(f"The agent cannot start its local API on {cfg.http.host}:{port}: {e.strerror or e}",
                  file=sys.stderr)
        return 2
    runfile = Path(agent.state_dir) / RUNFILE
    import os

    runfile.write_text(json.dumps({"pid": os.getpid(), "api_port": server.port, "simulate": args.simulate}))
    print(f"civiq edge agent: center {cfg.center.id}, node {cfg.node.id}, local API http://127.0.0.1:{server.port}/",
          flush=True)
    import faulthandler

    faulthandler.enable()  # systemd's watchdog kills with SIGABRT: the journal then gets every thread's stack
    try:
        agent.run_forever()
    finally:
        server.stop()
        if getattr(agent, "sim", None):
            agent.sim.stop()
        runfile.unlink(missing_ok=True)
    return 0


def test_print(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    reply = _ask_running_agent(cfg, "/api/test-print" + (f"?printer={args.printer}" if args.printer else ""))
    if reply is not None:
        if reply.get("ok"):
            print("test ticket printed on " + ", ".join(reply.get("printers", [])) + " (by the running agent)")
            return 0
        print(f"test print failed: {reply.get('error')}", file=sys.stderr)
        return 1
    agent = _open(cfg, args.simulate, "test print")
    if agent is None:
        return 2
    try:
        agent.test_print(args.printer)
        print("test ticket printed on " + (args.printer or ", ".join(agent.hw.printers) or "no printer"))
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"test print failed: {e}", file=sys.stderr)
        return 1
    finally:
        agent.hw.close()


def display_test(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    reply = _ask_running_agent(cfg, "/api/display-test")
    if reply is None:
        agent = _open(cfg, args.simulate, "display test")
        if agent is None:
            return 2
        try:
            results = agent.display_test()
        finally:
            agent.hw.close()
    else:
        results = reply.get("displays", {})
        if "error" in reply and not results:
            print(f"display test failed: {reply['error']}", file=sys.stderr)
            return 1
    for dev, res in results.items():
        print(f"display {dev}: " + ("showed 8888 then its id" if res == "ok" else res))
    return 0 if all(r == "ok" for r in results.values()) else 1


def main(args: argparse.Namespace) -> int:
    if args.cmd == "run":
        return run(args)
    if args.cmd == "doctor":
        from civiq.edge.doctor import main as doctor_main

        return doctor_main(args.config, simulate=args.simulate)
    if args.cmd == "test-print":
        return test_print(args)
    if args.cmd == "display-test":
        return display_test(args)
    if args.cmd in ("say-test", "voice-pack"):
        from civiq.edge.voice.cli import main as voice_main

        path = getattr(args, "config", None)
        cfg = _load(path) if path else None
        if path and cfg is None:
            return 2
        return voice_main(args, cfg)
    if args.cmd == "install":
        from civiq.install import install_edge

        return install_edge(args.config, root=args.root)
    return 2
