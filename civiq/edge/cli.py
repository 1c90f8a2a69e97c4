"""``civiq edge ...``: run, doctor, test-print, display-test, install."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from civiq.edge.config import CenterConfig, ConfigError, load_config

log = logging.getLogger("civiq.edge")

RUNFILE = "agent.json"  # in the state dir: pid and local API port of the running agent


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
        agent = EdgeAgent(cfg, pin_factory=sim.pin_factory, resolve_port=sim.resolve_port, **kw)
        agent.sim = sim
        return agent
    return EdgeAgent(cfg, pin_factory=None, **kw)


def run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    from civiq.edge.web import agent_routes
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
    server = WebThread(routes, host=cfg.http.host, port=port).start()
    runfile = Path(agent.state_dir) / RUNFILE
    import os

    runfile.write_text(json.dumps({"pid": os.getpid(), "api_port": server.port, "simulate": args.simulate}))
    print(f"civiq edge agent: center {cfg.center.id}, node {cfg.node.id}, local API http://127.0.0.1:{server.port}/",
          flush=True)
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
    agent = make_agent(cfg, args.simulate)
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
    agent = make_agent(cfg, args.simulate)
    bad = 0
    try:
        for d in agent.hw.displays.values():
            for text in ("8888", d.id[-4:].upper()):
                try:
                    d.show(text)
                except Exception as e:  # noqa: BLE001
                    print(f"display {d.id}: {e}")
                    bad += 1
                    break
            else:
                print(f"display {d.id}: showed 8888 then {d.id[-4:].upper()}")
    finally:
        agent.hw.close()
    return 1 if bad else 0


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
    if args.cmd == "install":
        from civiq.install import install_edge

        return install_edge(args.config, root=args.root)
    return 2
